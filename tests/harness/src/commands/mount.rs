//! `rvblk-harness mount`: one file mounted through the control interface (`docs/control.md`
//! §3.2) of a real driver, every block read back and compared with `--expect` files, the write
//! test on a writable LUN, then the adapter removed (the driver must close the file and free
//! everything). The report is `run`'s (`luns[]` with `kind`, `matches`, `read_only`, verifier
//! failures), for the mounted LUN only (`docs/harness-runtime.md` §5).

use crate::commands::control::{mount_file, requester_released};
use crate::commands::run::{read_lun, write_test, ExpectFile, LunReport, RunReport};
use crate::commands::scenario::{kind_name, Setup};
use crate::commands::scsi::Io;
use crate::emu::kernel::{MachineConfig, Personality};
use crate::emu::storport::Adapter;
use rvblk_core::control::ReplyError;
use rvblk_core::image::DeviceKind;
use std::path::PathBuf;

pub struct MountOptions {
    pub driver: PathBuf,
    pub file: PathBuf,
    pub kind: DeviceKind,
    pub read_only: bool,
    pub expect: Vec<String>,
    pub personality: Personality,
    pub verbose: bool,
    /// Requester, RAM limit.
    pub machine: MachineConfig,
    /// FILE_ATTRIBUTE_* bits the harness gives the file (`--file-attr`).
    pub attributes: u32,
}

/// The memory layout the adapter starts over: GRUB4DOS with a CD and a disk in RAM.
const SETUP: &str = "g4d_both";

pub fn run(opts: &MountOptions) -> Result<RunReport, String> {
    let driver =
        std::fs::read(&opts.driver).map_err(|e| format!("{}: {e}", opts.driver.display()))?;
    let file = std::path::absolute(&opts.file)
        .map_err(|e| format!("--file {}: {e}", opts.file.display()))?;
    let mut expects = ExpectFile::open_all(&opts.expect)?;
    let setup = Setup::named(SETUP)?;
    let k = setup.kernel_with(opts.personality, opts.verbose, opts.machine.clone());
    if opts.attributes != 0 {
        k.set_file_attributes(&file, opts.attributes)?;
    }
    let mut rep = RunReport::default();
    let mut a = match Adapter::start(&driver, k.clone()) {
        Ok(a) => a,
        Err(crate::emu::storport::StartError::Load(e)) => return Err(e),
        Err(e) => {
            k.shutdown_async();
            rep.notes.push(format!("adapter did not start: {e}"));
            rep.failures = k.failures();
            rep.failures.push(format!("adapter start failed: {e}"));
            rep.log = k.log();
            return Ok(rep);
        }
    };
    {
        let mut io = Io::new(&a);
        let who = opts.machine.requester;
        match mount_file(&mut io, &file, opts.kind, opts.read_only, who) {
            Ok(lun) => {
                let info = lun.scsi.clone();
                let scsi_ro = info.is_cd() || info.write_protected;
                let want_ro = opts.read_only || opts.kind == DeviceKind::CdRom;
                if lun.kind != opts.kind || lun.read_only != want_ro {
                    k.fail(format!(
                        "MOUNT reply: kind {:?} read-only {} for a {:?} mount (read-only {want_ro})",
                        lun.kind, lun.read_only, opts.kind
                    ));
                }
                if (
                    lun.block_size,
                    lun.blocks,
                    lun.read_only,
                    lun.kind == DeviceKind::CdRom,
                ) != (info.block_size, info.blocks, scsi_ro, info.is_cd())
                {
                    k.fail(format!(
                        "MOUNT reply says {} × {} bytes, read-only {}; INQUIRY / READ CAPACITY / MODE SENSE say {} × {}, read-only {scsi_ro}",
                        lun.blocks, lun.block_size, lun.read_only, info.blocks, info.block_size
                    ));
                }
                let (sha256, matches) = match read_lun(&mut io, &info, &mut expects, None) {
                    Ok(x) => x,
                    Err((e, _)) => {
                        k.fail(e);
                        (String::new(), Vec::new())
                    }
                };
                let wt = write_test(&mut io, &info, scsi_ro, &k);
                rep.luns.push(LunReport {
                    info,
                    kind: kind_name(lun.kind).to_string(),
                    read_only: scsi_ro,
                    source: "file".into(),
                    phys_base: None,
                    sha256,
                    matches,
                    write_test: wt,
                });
            }
            Err(Ok(ReplyError::Refused(e))) => rep.notes.push(format!(
                "the driver refused the mount: {e:?} ({})",
                e.message()
            )),
            Err(Ok(e)) => k.fail(format!("MOUNT reply not understood: {e:?}")),
            Err(Err(e)) => k.fail(e),
        }
        // The requester's thread and token: every reference given back.
        if let Some(irp) = k.last_requester_irp() {
            if let Err(e) = requester_released(&k, irp, std::time::Duration::from_secs(2)) {
                k.fail(e);
            }
        }
    }
    a.stop();
    a.remove();
    rep.stack_high_water = crate::emu::stack::measure();
    drop(a);
    rep.log = k.log();
    rep.failures = k.failures();
    Ok(rep)
}
