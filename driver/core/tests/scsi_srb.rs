//! SRB function decisions and outcome → SRB completion mapping.

mod scsi_common;

use rvblk_core::scsi::{DataDirection, Outcome, SenseData};
use rvblk_core::srb::{self, function, scsi_status, status, SrbAction, SrbFlags};

#[test]
fn functions() {
    assert_eq!(srb::action(function::EXECUTE_SCSI), SrbAction::ExecuteScsi);
    assert_eq!(srb::action(function::IO_CONTROL), SrbAction::IoControl);
    assert_eq!(srb::action(function::PNP), SrbAction::Pnp);
    for f in [
        function::SHUTDOWN,
        function::FLUSH,
        function::RESET_BUS,
        function::RESET_DEVICE,
        function::RESET_LOGICAL_UNIT,
        function::POWER,
    ] {
        assert_eq!(
            srb::action(f),
            SrbAction::Complete(status::SUCCESS),
            "{f:#x}"
        );
    }
    assert_eq!(
        srb::action(function::ABORT_COMMAND),
        SrbAction::Complete(status::ABORT_FAILED)
    );
    for f in [
        function::WMI,
        function::DUMP_POINTERS,
        function::FREE_DUMP_POINTERS,
        function::STORAGE_REQUEST_BLOCK,
        0x09,
        0x7F,
        0xFF,
    ] {
        assert_eq!(
            srb::action(f),
            SrbAction::Complete(status::INVALID_REQUEST),
            "{f:#x}"
        );
    }
}

#[test]
fn constants_match_srb_h() {
    assert_eq!(function::RESET_LOGICAL_UNIT, 0x20);
    assert_eq!(function::WMI, 0x17);
    assert_eq!(function::DUMP_POINTERS, 0x26);
    assert_eq!(status::DATA_OVERRUN, 0x12);
    assert_eq!(status::INVALID_LUN, 0x20);
    assert_eq!(status::NO_DEVICE, 0x08);
    assert_eq!(status::AUTOSENSE_VALID, 0x80);
    assert_eq!(SrbFlags::DATA_IN.bits(), 0x40);
    assert_eq!(SrbFlags::DATA_OUT.bits(), 0x80);
    assert_eq!(SrbFlags::DISABLE_AUTOSENSE.bits(), 0x20);
}

#[test]
fn direction_from_flags() {
    let d = |bits| DataDirection::from_srb_flags(SrbFlags::from_bits_retain(bits));
    assert_eq!(d(0x00), DataDirection::None);
    assert_eq!(d(0x40), DataDirection::In);
    assert_eq!(d(0x80), DataDirection::Out);
    assert_eq!(d(0xC0), DataDirection::Unspecified);
    assert_eq!(d(0x40 | 0x20 | 0x02), DataDirection::In);
}

#[test]
fn good_with_underrun_is_success() {
    let mut sense = [0xEEu8; 18];
    let c = srb::complete(&Outcome::good(36), SrbFlags::DATA_IN, &mut sense);
    assert_eq!(c.srb_status, status::SUCCESS);
    assert_eq!(c.scsi_status, scsi_status::GOOD);
    assert_eq!(c.data_transfer_length, 36);
    assert_eq!(c.sense_length, 0);
    assert!(sense.iter().all(|&b| b == 0xEE), "sense buffer untouched");
}

#[test]
fn check_condition_copies_sense() {
    let mut sense = [0u8; 32];
    let o = Outcome::check_condition(SenseData::lba_out_of_range());
    let c = srb::complete(&o, SrbFlags::DATA_IN, &mut sense);
    assert_eq!(c.srb_status, status::ERROR | status::AUTOSENSE_VALID);
    assert_eq!(c.scsi_status, scsi_status::CHECK_CONDITION);
    assert_eq!(c.data_transfer_length, 0);
    assert_eq!(c.sense_length, 18);
    assert_eq!(sense[0], 0x70);
    assert_eq!(sense[2], 0x05);
    assert_eq!(sense[7], 10);
    assert_eq!((sense[12], sense[13]), (0x21, 0x00));
    assert!(sense[18..].iter().all(|&b| b == 0));
}

#[test]
fn short_sense_buffer_truncates() {
    let mut sense = [0u8; 14];
    let o = Outcome::check_condition(SenseData::write_protected());
    let c = srb::complete(&o, SrbFlags::DATA_OUT, &mut sense);
    assert_eq!(c.srb_status, status::ERROR | status::AUTOSENSE_VALID);
    assert_eq!(c.sense_length, 14);
    assert_eq!((sense[2], sense[12], sense[13]), (0x07, 0x27, 0x00));
}

#[test]
fn no_sense_buffer_or_autosense_disabled() {
    let o = Outcome::check_condition(SenseData::invalid_opcode());
    let c = srb::complete(&o, SrbFlags::empty(), &mut []);
    assert_eq!(c.srb_status, status::ERROR);
    assert_eq!(c.sense_length, 0);
    let mut sense = [0xEEu8; 18];
    let c = srb::complete(&o, SrbFlags::DISABLE_AUTOSENSE, &mut sense);
    assert_eq!(c.srb_status, status::ERROR);
    assert_eq!(c.scsi_status, scsi_status::CHECK_CONDITION);
    assert_eq!(c.sense_length, 0);
    assert!(sense.iter().all(|&b| b == 0xEE));
}

#[test]
fn busy() {
    let mut sense = [0u8; 18];
    let c = srb::complete(&Outcome::busy(), SrbFlags::DATA_IN, &mut sense);
    assert_eq!(c.srb_status, status::BUSY);
    assert_eq!(c.data_transfer_length, 0);
    assert_eq!(c.sense_length, 0);
}

#[test]
fn sense_field_pointer_layout() {
    let b = SenseData::invalid_field(7, Some(7)).to_bytes();
    assert_eq!(&b[15..18], &[0xCF, 0x00, 0x07]);
    let b = SenseData::invalid_field(0x0102, None).to_bytes();
    assert_eq!(&b[15..18], &[0xC0, 0x01, 0x02]);
    let b = SenseData::lba_out_of_range().to_bytes();
    assert_eq!(&b[15..18], &[0, 0, 0]);
}

mod execute_scsi {
    //! Which SRBs make the core ask the port for their data buffer, and as what.

    use super::scsi_common::{setup, VecMedium};
    use rvblk_core::image::{DeviceKind, WritePolicy};
    use rvblk_core::scsi::ScsiTarget;
    use rvblk_core::srb::{self, scsi_status, status, BufferUse, DataBuffer, SrbFlags};

    /// Records what it was asked for; `None` when told to fail.
    struct Port {
        buf: Vec<u8>,
        asked: Vec<BufferUse>,
        available: bool,
    }

    impl DataBuffer for Port {
        fn get(&mut self, usage: BufferUse) -> Option<&mut [u8]> {
            self.asked.push(usage);
            self.available.then_some(self.buf.as_mut_slice())
        }
    }

    fn run(
        t: &ScsiTarget,
        m: &VecMedium,
        cdb: &[u8],
        len: u32,
        available: bool,
    ) -> (Port, srb::SrbCompletion) {
        let mut port = Port {
            buf: vec![0; len as usize],
            asked: Vec::new(),
            available,
        };
        let mut sense = [0u8; 32];
        let done = srb::execute_scsi(t, cdb, SrbFlags::DATA_IN, len, &mut port, &mut sense, m);
        (port, done)
    }

    #[test]
    fn medium_and_parameter_data_are_told_apart() {
        let (t, m) = setup(DeviceKind::Disk, 64, WritePolicy::ReadWrite);
        let (port, done) = run(&t, &m, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, true);
        assert_eq!(port.asked, [BufferUse::MediumData], "READ(10)");
        assert_eq!(
            (done.srb_status, done.data_transfer_length),
            (status::SUCCESS, 512)
        );
        assert_eq!(
            port.buf,
            m.snapshot()[..512],
            "the data went into the port's buffer"
        );
        let (port, done) = run(&t, &m, &[0x12, 0, 0, 0, 36, 0], 36, true);
        assert_eq!(port.asked, [BufferUse::Parameters], "INQUIRY");
        assert_eq!(done.srb_status, status::SUCCESS);
    }

    #[test]
    fn commands_without_data_never_ask() {
        let (t, m) = setup(DeviceKind::Disk, 64, WritePolicy::ReadWrite);
        let (port, done) = run(&t, &m, &[0x00, 0, 0, 0, 0, 0], 0, true);
        assert!(port.asked.is_empty(), "TEST UNIT READY");
        assert_eq!(done.srb_status, status::SUCCESS);
        let (port, done) = run(&t, &m, &[0xEE, 0, 0, 0, 0, 0], 512, true);
        assert!(port.asked.is_empty(), "an unknown opcode is rejected first");
        assert_eq!(done.scsi_status, scsi_status::CHECK_CONDITION);
    }

    #[test]
    fn an_unavailable_buffer_is_busy_not_an_error() {
        let (t, m) = setup(DeviceKind::Disk, 64, WritePolicy::ReadWrite);
        let (port, done) = run(&t, &m, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, false);
        assert_eq!(port.asked, [BufferUse::MediumData]);
        assert_eq!(
            (
                done.srb_status,
                done.data_transfer_length,
                done.sense_length
            ),
            (status::BUSY, 0, 0),
            "the port retries BUSY requests"
        );
    }
}
