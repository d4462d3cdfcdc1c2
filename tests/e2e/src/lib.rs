//! End-to-end tests: real loaders (MEMDISK in QEMU) place images in RAM for the real driver
