//! The SLIC driver's exact bus traffic, against embedded-hal-mock.

use std::time::Instant;

use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinT};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiT};
use pbx_hal::fxs::slic::regs::{self, Register};
use pbx_hal::fxs::slic::Error;
use pbx_hal::fxs::{
    BoardFile, FxsEvent, FxsPort, HookState, Linefeed, PcmCodec, PcmConfig, RingCadence, Slic,
};

type Driver = Slic<SpiMock<u8>, PinMock, PinMock>;

/// One register write frame on channel 0: control, address, data.
fn wr(addr: u8, value: u8) -> Vec<SpiT<u8>> {
    vec![
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x00, addr, value]),
        SpiT::transaction_end(),
    ]
}

/// One register read frame on channel 0: control (read bit), address, then one byte in.
fn rd(addr: u8, value: u8) -> Vec<SpiT<u8>> {
    vec![
        SpiT::transaction_start(),
        SpiT::write_vec(vec![0x80, addr]),
        SpiT::read(value),
        SpiT::transaction_end(),
    ]
}

fn driver(spi: Vec<Vec<SpiT<u8>>>, reset: &[PinT], irq: &[PinT]) -> Driver {
    let spi: Vec<SpiT<u8>> = spi.into_iter().flatten().collect();
    Slic::new(SpiMock::new(&spi), PinMock::new(reset), PinMock::new(irq))
}

fn done(d: Driver) {
    let (mut spi, mut reset, mut irq) = d.destroy();
    spi.done();
    reset.done();
    irq.done();
}

#[allow(clippy::disallowed_methods)] // tests own the clock; this is its only reading
fn t0() -> Instant {
    Instant::now()
}

#[test]
fn set_linefeed_writes_the_state_code() {
    let cases = [
        (Linefeed::Open, 0),
        (Linefeed::ForwardActive, 1),
        (Linefeed::OnHookTransmission, 2),
        (Linefeed::Ringing, 4),
        (Linefeed::ReverseActive, 5),
    ];
    let mut d = driver(
        cases.iter().map(|&(_, code)| wr(0x1E, code)).collect(),
        &[],
        &[],
    );
    for (lf, _) in cases {
        d.set_linefeed(lf).unwrap();
        assert_eq!(d.linefeed(), lf, "shadow follows the write");
    }
    done(d);
}

#[test]
fn register_read_is_control_address_then_one_byte() {
    let mut d = driver(vec![rd(0x22, 0x01)], &[], &[]);
    assert_eq!(d.read_register(Register::Lcrrtp).unwrap(), 0x01);
    done(d);
}

#[test]
fn channel_goes_into_the_control_byte() {
    let spi = vec![
        vec![
            SpiT::transaction_start(),
            SpiT::write_vec(vec![0x83, 0x00]),
            SpiT::read(regs::CHIP_ID),
            SpiT::transaction_end(),
        ],
        vec![
            SpiT::transaction_start(),
            SpiT::write_vec(vec![0x03, 0x1E, 0x01]),
            SpiT::transaction_end(),
        ],
    ];
    let mut d = driver(spi, &[], &[]).with_channel(3);
    d.check_id().unwrap();
    d.set_linefeed(Linefeed::ForwardActive).unwrap();
    done(d);
}

#[test]
fn ram_write_sets_address_and_data_then_polls_busy() {
    let mut d = driver(
        vec![
            wr(0x05, 0x06), // RAMADDRHI
            wr(0x06, 0x44), // RAMDATA0..3, little-endian
            wr(0x07, 0x33),
            wr(0x08, 0x22),
            wr(0x09, 0x11),
            wr(0x0A, 0x01), // RAMADDRLO starts the write
            rd(0x04, 0x01), // RAMSTAT busy
            rd(0x04, 0x01),
            rd(0x04, 0x00), // done
        ],
        &[],
        &[],
    );
    d.write_ram(0x0601, 0x1122_3344).unwrap();
    done(d);
}

#[test]
fn ram_read_starts_with_address_only() {
    let mut d = driver(
        vec![
            wr(0x05, 0x02),
            wr(0x0A, 0x80),
            rd(0x04, 0x00),
            rd(0x06, 0x78),
            rd(0x07, 0x56),
            rd(0x08, 0x34),
            rd(0x09, 0x12),
        ],
        &[],
        &[],
    );
    assert_eq!(d.read_ram(0x0280).unwrap(), 0x1234_5678);
    done(d);
}

#[test]
fn id_check_accepts_only_the_chip_id() {
    let mut d = driver(
        vec![rd(0x00, 0xC3), rd(0x00, 0xFF), rd(0x00, 0x00)],
        &[],
        &[],
    );
    assert_eq!(d.check_id(), Ok(()));
    assert_eq!(d.check_id(), Err(Error::WrongChipId { found: 0xFF }));
    assert_eq!(d.check_id(), Err(Error::WrongChipId { found: 0x00 }));
    done(d);
}

#[test]
fn init_pulses_reset_checks_id_runs_board_enables_irqs_and_feeds() {
    let board = BoardFile::parse("reg 0x40 0x12\nram 0x0010 0xA0B0C0D0\ndelay 5\n").unwrap();
    let mut d = driver(
        vec![
            rd(0x00, 0xC3),
            wr(0x40, 0x12),
            wr(0x05, 0x00),
            wr(0x06, 0xD0),
            wr(0x07, 0xC0),
            wr(0x08, 0xB0),
            wr(0x09, 0xA0),
            wr(0x0A, 0x10),
            rd(0x04, 0x00),
            rd(0x12, 0x00), // acknowledge stale interrupts
            wr(0x16, regs::IRQ1_HOOK | regs::IRQ1_RING_TRIP),
            wr(0x1E, 0x01),
        ],
        &[PinT::set(State::Low), PinT::set(State::High)],
        &[],
    );
    d.init(&mut NoopDelay::new(), &board).unwrap();
    assert_eq!(d.irq_enable(), 0x03);
    assert_eq!(d.linefeed(), Linefeed::ForwardActive);
    done(d);
}

#[test]
fn init_stops_at_a_wrong_id_before_touching_anything() {
    let board = BoardFile::parse("reg 0x40 0x12\n").unwrap();
    let mut d = driver(
        vec![rd(0x00, 0x55)],
        &[PinT::set(State::Low), PinT::set(State::High)],
        &[],
    );
    assert_eq!(
        d.init(&mut NoopDelay::new(), &board),
        Err(Error::WrongChipId { found: 0x55 })
    );
    done(d);
}

#[test]
fn poll_reads_irq_status_only_when_the_pin_is_low() {
    let now = t0();
    let mut d = driver(
        vec![rd(0x12, regs::IRQ1_HOOK), rd(0x22, regs::LCRRTP_LCR)],
        &[],
        &[
            PinT::get(State::High),
            PinT::get(State::Low),
            PinT::get(State::High),
        ],
    );
    assert_eq!(d.poll_event(now).unwrap(), None);
    assert_eq!(
        d.poll_event(now).unwrap(),
        Some(FxsEvent::HookChanged {
            off_hook: true,
            at: now
        })
    );
    assert_eq!(d.hook_state(), HookState::OffHook);
    assert_eq!(d.poll_event(now).unwrap(), None);
    done(d);
}

#[test]
fn start_ringing_programs_timers_in_8khz_ticks() {
    // 1 s = 8000 = 0x1F40 ticks, 4 s = 32000 = 0x7D00 ticks.
    let mut d = driver(
        vec![
            wr(0x30, 0x40),
            wr(0x31, 0x1F),
            wr(0x32, 0x00),
            wr(0x33, 0x7D),
            wr(0x17, regs::RINGCON_TA_EN | regs::RINGCON_TI_EN),
            wr(0x1E, 0x04),
            wr(0x1E, 0x00), // back to the linefeed before ringing (open: never initialised)
            wr(0x17, 0x00),
        ],
        &[],
        &[],
    );
    d.start_ringing(RingCadence::de()).unwrap();
    d.stop_ringing().unwrap();
    done(d);
}

#[test]
fn ring_cadence_out_of_timer_range_is_rejected_without_bus_traffic() {
    use std::time::Duration;
    let mut d = driver(vec![], &[], &[]);
    let too_long = RingCadence::new(Duration::from_secs(9), Duration::from_secs(4));
    assert_eq!(
        d.start_ringing(too_long),
        Err(Error::InvalidCadence {
            on_ms: 9000,
            off_ms: 4000
        })
    );
    let no_burst = RingCadence::new(Duration::ZERO, Duration::from_secs(4));
    assert_eq!(
        d.start_ringing(no_burst),
        Err(Error::InvalidCadence {
            on_ms: 0,
            off_ms: 4000
        })
    );
    done(d);
}

#[test]
fn configure_pcm_writes_bit_offsets_and_format() {
    let mut d = driver(
        vec![
            wr(0x0C, 16),
            wr(0x0D, 0),
            wr(0x0E, 0x08),
            wr(0x0F, 0x01),
            wr(0x0B, 0x10),
        ],
        &[],
        &[],
    );
    let cfg = PcmConfig {
        timeslot_tx: 2,
        timeslot_rx: 33,
        codec: PcmCodec::ALaw,
    };
    d.configure_pcm(cfg).unwrap();
    let bad = PcmConfig {
        timeslot_tx: 128,
        timeslot_rx: 0,
        codec: PcmCodec::MuLaw,
    };
    assert_eq!(
        d.configure_pcm(bad),
        Err(Error::InvalidTimeslot { timeslot: 128 })
    );
    done(d);
}

#[test]
fn polarity_writes_polrev() {
    let mut d = driver(vec![wr(0x1D, 0x01), wr(0x1D, 0x00)], &[], &[]);
    d.set_polarity(true).unwrap();
    assert!(d.polarity_reversed());
    d.set_polarity(false).unwrap();
    assert!(!d.polarity_reversed());
    done(d);
}
