//! Admission rules (`docs/control.md` §5): sizes, memory, path limits, target exhaustion, boot
//! images, and which target a new LUN gets.

mod control_common;

use control_common::{path, utf16};
use rvblk_core::control::{
    admit, ControlError, Decision, Limits, LunSummary, Origin, Request, Services,
};
use rvblk_core::image::DeviceKind;

const LIMITS: Limits = Limits {
    max_targets: 8,
    ram_bytes: 1 << 30,
    max_path_units: 260,
    services: Services::all(),
};

fn lun(target_id: u8, origin: Origin) -> LunSummary {
    LunSummary { target_id, origin }
}

fn ram(kind: DeviceKind, size_bytes: u64) -> Request<'static> {
    Request::CreateRamDisk {
        kind,
        read_only: false,
        size_bytes,
        source: None,
    }
}

#[test]
fn ram_disk_sizes() {
    let none: &[LunSummary] = &[];
    let admit = |r: &Request<'_>| admit(r, none, &LIMITS);
    assert_eq!(
        admit(&ram(DeviceKind::Disk, 0)),
        Err(ControlError::ZeroSize)
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, 64 << 20)),
        Ok(Decision::CreateRamDisk { target_id: 0 })
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, LIMITS.ram_bytes)),
        Ok(Decision::CreateRamDisk { target_id: 0 }),
        "exactly the memory available"
    );
    for too_big in [LIMITS.ram_bytes + 512, 1 << 40, u64::MAX - 511] {
        assert_eq!(
            admit(&ram(DeviceKind::Disk, too_big)),
            Err(ControlError::SizeExceedsMemory),
            "{too_big}"
        );
    }
    assert_eq!(
        admit(&ram(DeviceKind::Disk, u64::MAX)),
        Err(ControlError::SizeNotBlockMultiple)
    );
    for odd in [1, 511, 513, (64 << 20) + 1] {
        assert_eq!(
            admit(&ram(DeviceKind::Floppy, odd)),
            Err(ControlError::SizeNotBlockMultiple)
        );
    }
    // CD blocks are 2048 bytes; a CD also needs content.
    let iso = utf16(r"\??\C:\a.iso");
    let cd = |size_bytes| Request::CreateRamDisk {
        kind: DeviceKind::CdRom,
        read_only: true,
        size_bytes,
        source: Some(path(&iso)),
    };
    assert_eq!(
        admit(&cd(2048 * 3 + 512)),
        Err(ControlError::SizeNotBlockMultiple)
    );
    assert_eq!(
        admit(&cd(2048 * 3)),
        Ok(Decision::CreateRamDisk { target_id: 0 })
    );
    assert_eq!(
        admit(&ram(DeviceKind::CdRom, 2048)),
        Err(ControlError::CdNeedsSource)
    );
}

#[test]
fn path_limits() {
    let none: &[LunSummary] = &[];
    let ok = utf16(&format!("\\{}", "p".repeat(259)));
    let long = utf16(&format!("\\{}", "p".repeat(260)));
    for (bytes, want) in [
        (&ok, Ok(Decision::Mount { target_id: 0 })),
        (&long, Err(ControlError::PathTooLong)),
    ] {
        let r = Request::MountFile {
            kind: DeviceKind::Disk,
            read_only: false,
            path: path(bytes),
        };
        assert_eq!(admit(&r, none, &LIMITS), want);
        let r = Request::CreateRamDisk {
            kind: DeviceKind::Disk,
            read_only: false,
            size_bytes: 1 << 20,
            source: Some(path(bytes)),
        };
        assert_eq!(
            admit(&r, none, &LIMITS).map(|_| ()),
            want.map(|_| ()),
            "RAM disk source"
        );
    }
}

#[test]
fn lowest_free_target_and_exhaustion() {
    let iso = utf16(r"\??\C:\a.iso");
    let mount = Request::MountFile {
        kind: DeviceKind::CdRom,
        read_only: true,
        path: path(&iso),
    };
    let mut luns = vec![
        lun(0, Origin::Loader),
        lun(1, Origin::Loader),
        lun(3, Origin::File),
    ];
    assert_eq!(
        admit(&mount, &luns, &LIMITS),
        Ok(Decision::Mount { target_id: 2 }),
        "the gap"
    );
    luns.push(lun(2, Origin::File));
    assert_eq!(
        admit(&mount, &luns, &LIMITS),
        Ok(Decision::Mount { target_id: 4 })
    );
    for t in 4..LIMITS.max_targets {
        luns.push(lun(t, Origin::RamDisk));
    }
    assert_eq!(
        admit(&mount, &luns, &LIMITS),
        Err(ControlError::NoFreeTarget)
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, 1 << 20), &luns, &LIMITS),
        Err(ControlError::NoFreeTarget)
    );
    // A LUN outside the adapter's range does not free anything inside it.
    let none = Limits {
        max_targets: 0,
        ..LIMITS
    };
    assert_eq!(admit(&mount, &[], &none), Err(ControlError::NoFreeTarget));
    // Listing never depends on room.
    assert_eq!(
        admit(&Request::ListLuns, &luns, &LIMITS),
        Ok(Decision::List)
    );
}

#[test]
fn removal_rules() {
    let luns = [
        lun(0, Origin::Loader),
        lun(1, Origin::File),
        lun(2, Origin::RamDisk),
    ];
    let remove = |target_id| admit(&Request::Remove { target_id }, &luns, &LIMITS);
    assert_eq!(remove(0), Err(ControlError::BootImage));
    assert_eq!(remove(1), Ok(Decision::Remove { target_id: 1 }));
    assert_eq!(remove(2), Ok(Decision::Remove { target_id: 2 }));
    assert_eq!(remove(3), Err(ControlError::NoSuchTarget));
    assert_eq!(remove(255), Err(ControlError::NoSuchTarget));
}

#[test]
fn services_the_port_lacks_are_refused_last() {
    let iso = utf16(r"\??\C:\a.iso");
    let long = utf16(&format!("\\{}", "p".repeat(260)));
    let mount = |p| Request::MountFile {
        kind: DeviceKind::CdRom,
        read_only: true,
        path: path(p),
    };
    let luns = [lun(0, Origin::Loader), lun(1, Origin::File)];
    let none = Limits {
        services: Services::empty(),
        ..LIMITS
    };
    // Without the service: every rule still gives its own answer first …
    assert_eq!(
        admit(&mount(&long), &luns, &none),
        Err(ControlError::PathTooLong)
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, 0), &luns, &none),
        Err(ControlError::ZeroSize)
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, LIMITS.ram_bytes + 512), &luns, &none),
        Err(ControlError::SizeExceedsMemory)
    );
    let remove = |target_id| Request::Remove { target_id };
    assert_eq!(
        admit(&remove(0), &luns, &none),
        Err(ControlError::BootImage)
    );
    assert_eq!(
        admit(&remove(5), &luns, &none),
        Err(ControlError::NoSuchTarget)
    );
    // … and what would be admitted is NOT AVAILABLE; LIST never needs a service.
    assert_eq!(
        admit(&mount(&iso), &luns, &none),
        Err(ControlError::NotAvailable)
    );
    assert_eq!(
        admit(&ram(DeviceKind::Disk, 1 << 20), &luns, &none),
        Err(ControlError::NotAvailable)
    );
    assert_eq!(
        admit(&remove(1), &luns, &none),
        Err(ControlError::NotAvailable)
    );
    assert_eq!(admit(&Request::ListLuns, &luns, &none), Ok(Decision::List));
    // Each service unlocks exactly its request.
    for (service, request, want) in [
        (
            Services::MOUNT_FILE,
            mount(&iso),
            Decision::Mount { target_id: 2 },
        ),
        (
            Services::RAM_DISK,
            ram(DeviceKind::Disk, 1 << 20),
            Decision::CreateRamDisk { target_id: 2 },
        ),
        (
            Services::REMOVE,
            remove(1),
            Decision::Remove { target_id: 1 },
        ),
    ] {
        let only = Limits {
            services: service,
            ..LIMITS
        };
        assert_eq!(admit(&request, &luns, &only), Ok(want));
        let others = Limits {
            services: Services::all() - service,
            ..LIMITS
        };
        assert_eq!(
            admit(&request, &luns, &others),
            Err(ControlError::NotAvailable)
        );
    }
}
