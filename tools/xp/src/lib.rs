//! Windows XP/2003 integration: txtsetup.oem, F6 floppy image, txtsetup.sif slipstream

pub mod cli;
