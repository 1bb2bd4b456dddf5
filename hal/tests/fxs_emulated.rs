//! The real SLIC driver against the emulated chip and a virtual phone, on simulated time.

use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::ErrorKind;
use pbx_hal::fxs::emulator::{
    ChipWrite, VirtualIrqPin, VirtualPhone, VirtualResetPin, VirtualSlic, VirtualSpiError,
};
use pbx_hal::fxs::slic::regs::{self, LinefeedCode, Register};
use pbx_hal::fxs::slic::Error;
use pbx_hal::fxs::{
    BoardFile, BoardFileError, FxsEvent, FxsPort, HookState, Linefeed, PcmCodec, PcmConfig,
    RingCadence, Slic,
};

const SIM_BOARD: &str = include_str!("../boards/sim-si3217x.board");

type Driver = Slic<VirtualSlic, VirtualResetPin, VirtualIrqPin>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Records every delay in ms (the driver only asks for whole milliseconds).
#[derive(Default)]
struct RecordingDelay {
    ms: Vec<u32>,
}

impl DelayNs for RecordingDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.ms.push(ns / 1_000_000);
    }
    fn delay_ms(&mut self, ms: u32) {
        self.ms.push(ms);
    }
}

struct Rig {
    t0: Instant,
    chip: VirtualSlic,
    phone: VirtualPhone,
    irq: VirtualIrqPin,
    slic: Driver,
}

#[allow(clippy::disallowed_methods)] // tests own the clock; this is its only reading
fn t0() -> Instant {
    Instant::now()
}

/// A chip and a phone, not yet initialised.
fn bare() -> Rig {
    let t0 = t0();
    let chip = VirtualSlic::new(t0);
    let slic = Slic::new(chip.clone(), chip.reset_pin(), chip.irq_pin());
    Rig {
        t0,
        phone: chip.phone(),
        irq: chip.irq_pin(),
        chip,
        slic,
    }
}

/// Initialised with the shipped simulator board file.
fn rig() -> Rig {
    let mut r = bare();
    let board = BoardFile::parse(SIM_BOARD).expect("the shipped board file parses");
    r.slic
        .init(&mut RecordingDelay::default(), &board)
        .expect("the emulated chip comes up");
    r
}

impl Rig {
    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    /// Move the chip to `now` and collect what the driver reports then.
    fn poll(&mut self, now: Instant) -> Vec<FxsEvent> {
        self.chip.advance(now);
        let mut events = Vec::new();
        while let Some(ev) = self
            .slic
            .poll_event(now)
            .expect("emulator bus never fails unasked")
        {
            events.push(ev);
        }
        events
    }

    /// Step through every scheduled hook change, polling at each one (an ideal IRQ handler).
    fn poll_through_schedule(&mut self) -> Vec<FxsEvent> {
        // The first change at the phone call's `now` has already happened.
        let mut events = self.poll(self.chip.now());
        while let Some(next) = self.phone.next_change() {
            events.extend(self.poll(next));
        }
        events
    }
}

fn hook(off_hook: bool, at: Instant) -> FxsEvent {
    FxsEvent::HookChanged { off_hook, at }
}

#[test]
fn init_runs_the_board_file_after_a_hard_reset() {
    let mut r = bare();
    let board = BoardFile::parse(SIM_BOARD).unwrap();
    let mut delay = RecordingDelay::default();
    r.slic.init(&mut delay, &board).unwrap();

    let writes = r.chip.writes();
    let mut expected = vec![ChipWrite::HardReset];
    expected.extend(board.entries().iter().filter_map(|e| match e.command {
        pbx_hal::fxs::board_file::BoardCommand::Reg { addr, value } => {
            Some(ChipWrite::Reg { addr, value })
        }
        pbx_hal::fxs::board_file::BoardCommand::Ram { addr, value } => {
            Some(ChipWrite::Ram { addr, value })
        }
        pbx_hal::fxs::board_file::BoardCommand::Delay { .. } => None,
    }));
    expected.push(ChipWrite::Reg {
        addr: 0x16,
        value: regs::IRQ1_HOOK | regs::IRQ1_RING_TRIP,
    });
    expected.push(ChipWrite::Reg {
        addr: 0x1E,
        value: 1,
    });
    assert_eq!(writes, expected);
    assert_eq!(r.chip.ram(0x0600), Some(0x00A5_F00D));
    assert_eq!(r.chip.ram(0x0602), Some(0xFFFF_FFFF));
    assert_eq!(
        delay.ms,
        vec![1, 10, 10],
        "reset hold, reset settle, board `delay 10`"
    );
    assert_eq!(r.phone.linefeed(), LinefeedCode::ForwardActive);
    assert_eq!(
        r.slic.actual_linefeed().unwrap(),
        LinefeedCode::ForwardActive
    );
    assert_eq!(r.chip.protocol_errors(), 0);
}

#[test]
fn wrong_chip_id_fails_init_and_writes_nothing() {
    for id in [0x00, 0xFF, 0xC2] {
        let mut r = bare();
        r.chip.set_chip_id(id);
        let board = BoardFile::parse(SIM_BOARD).unwrap();
        let err = r
            .slic
            .init(&mut RecordingDelay::default(), &board)
            .unwrap_err();
        assert_eq!(err, Error::WrongChipId { found: id });
        assert_eq!(r.chip.writes(), vec![ChipWrite::HardReset]);
        assert_eq!(r.phone.linefeed(), LinefeedCode::Open);
    }
}

#[test]
fn off_hook_and_on_hook_raise_the_irq_and_are_stamped() {
    let mut r = rig();
    assert!(r.irq.is_high().unwrap());
    let lift = r.at(ms(1500));
    r.phone.off_hook(lift);
    assert!(
        r.irq.is_low().unwrap(),
        "IRQ pin asserted (low) on loop closure"
    );
    let seen = r.at(ms(1502)); // the IRQ handler runs 2 ms later
    assert_eq!(r.poll(seen), vec![hook(true, seen)]);
    assert!(r.irq.is_high().unwrap(), "reading IRQ1 cleared it");
    assert_eq!(r.slic.hook_state(), HookState::OffHook);

    let hang_up = r.at(ms(9000));
    r.phone.on_hook(hang_up);
    assert_eq!(r.poll(hang_up), vec![hook(false, hang_up)]);
    assert_eq!(r.slic.hook_state(), HookState::OnHook);
    assert_eq!(r.poll(r.at(ms(9100))), vec![], "nothing further");
}

#[test]
fn pulse_dialling_gives_timestamped_breaks_and_makes() {
    let mut r = rig();
    r.phone.off_hook(r.at(ms(0)));
    assert_eq!(r.poll(r.at(ms(0))), vec![hook(true, r.at(ms(0)))]);

    let start = r.at(ms(1000));
    let end = r.phone.dial_pulses(start, 3);
    assert_eq!(end, start + ms(260));
    let events = r.poll_through_schedule();
    let expected: Vec<FxsEvent> = [
        (0, false),
        (60, true),
        (100, false),
        (160, true),
        (200, false),
        (260, true),
    ]
    .iter()
    .map(|&(t, off)| hook(off, start + ms(t)))
    .collect();
    assert_eq!(events, expected);
    assert_eq!(r.slic.hook_state(), HookState::OffHook);
}

#[test]
fn every_digit_gives_its_number_of_pulses() {
    let mut r = rig();
    r.phone.off_hook(r.at(ms(0)));
    r.poll(r.at(ms(0)));
    let mut start = r.at(ms(500));
    for (digit, pulses) in [(1, 1), (2, 2), (5, 5), (9, 9), (0, 10)] {
        let end = r.phone.dial_pulses(start, digit);
        let events = r.poll_through_schedule();
        let breaks = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    FxsEvent::HookChanged {
                        off_hook: false,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(breaks, pulses, "digit {digit}");
        assert_eq!(
            events.len(),
            2 * pulses,
            "digit {digit}: each break has its make"
        );
        assert_eq!(events.last(), Some(&hook(true, end)), "digit {digit}");
        start = end + ms(700); // inter-digit pause
    }
}

#[test]
fn a_pulse_latched_before_the_irq_is_served_is_not_lost() {
    let mut r = rig();
    r.phone.off_hook(r.at(ms(0)));
    r.poll(r.at(ms(0)));
    let start = r.at(ms(1000));
    r.phone.dial_pulses(start, 1);
    // The handler is late: break and make both happened before it ran.
    let late = start + ms(90);
    assert_eq!(r.poll(late), vec![hook(false, late), hook(true, late)]);
}

#[test]
fn flash_is_a_timed_break() {
    let mut r = rig();
    r.phone.off_hook(r.at(ms(0)));
    r.poll(r.at(ms(0)));
    let start = r.at(ms(3000));
    let back = r.phone.flash(start, ms(150));
    assert_eq!(back, start + ms(150));
    assert_eq!(
        r.poll_through_schedule(),
        vec![hook(false, start), hook(true, back)]
    );
}

#[test]
fn ringing_follows_the_cadence_in_simulated_time() {
    let mut r = rig();
    let start = r.at(ms(10_000));
    r.chip.advance(start);
    r.slic.start_ringing(RingCadence::de()).unwrap();
    let cases = [
        (0, true),
        (999, true),
        (1000, false),
        (3000, false),
        (4999, false),
        (5000, true),
        (5999, true),
        (6000, false),
        (10_000, true),
        (60_500, true),
        (61_500, false),
    ];
    for (offset, ringing) in cases {
        assert_eq!(
            r.phone.is_ringing(start + ms(offset)),
            ringing,
            "at +{offset} ms"
        );
    }
    // Cadence edges latch IRQ1 but are not enabled, so they wake nobody.
    let irq1 = r.chip.register(Register::Irq1);
    assert_eq!(
        irq1 & (regs::IRQ1_RING_TA | regs::IRQ1_RING_TI),
        regs::IRQ1_RING_TA | regs::IRQ1_RING_TI
    );
    assert!(r.irq.is_high().unwrap());
    assert_eq!(r.poll(start + ms(61_500)), vec![]);
    assert_eq!(
        r.phone.linefeed(),
        LinefeedCode::ForwardOht,
        "pause between bursts"
    );

    r.slic.stop_ringing().unwrap();
    assert!(!r.phone.is_ringing(start + ms(65_000)));
    assert_eq!(r.phone.linefeed(), LinefeedCode::ForwardActive);
    assert_eq!(r.slic.linefeed(), Linefeed::ForwardActive);
}

#[test]
fn ring_trip_stops_ringing_and_reports_answer() {
    for answer_ms in [400, 2500] {
        // during a burst, then during a pause
        let mut r = rig();
        let start = r.at(ms(1000));
        r.chip.advance(start);
        r.slic.start_ringing(RingCadence::de()).unwrap();
        let answer = start + ms(answer_ms);
        r.phone.off_hook(answer);
        assert!(r.irq.is_low().unwrap());
        assert_eq!(
            r.poll(answer),
            vec![FxsEvent::RingTripped { at: answer }],
            "answer at +{answer_ms}"
        );
        assert_eq!(r.slic.hook_state(), HookState::OffHook);
        assert_eq!(r.slic.linefeed(), Linefeed::ForwardActive);
        assert_eq!(r.phone.linefeed(), LinefeedCode::ForwardActive);
        assert!(
            !r.phone.is_ringing(start + ms(5000)),
            "no ring after the trip"
        );
        assert_eq!(
            r.chip.register(Register::Lcrrtp),
            regs::LCRRTP_LCR | regs::LCRRTP_RTP
        );

        let hang_up = start + ms(20_000);
        r.phone.on_hook(hang_up);
        assert_eq!(r.poll(hang_up), vec![hook(false, hang_up)]);
    }
}

#[test]
fn polarity_reversal_reaches_the_line() {
    let mut r = rig();
    assert!(!r.phone.polarity_reversed());
    r.slic.set_polarity(true).unwrap();
    assert!(r.phone.polarity_reversed());
    assert_eq!(r.phone.linefeed(), LinefeedCode::ReverseActive);
    r.slic.set_linefeed(Linefeed::OnHookTransmission).unwrap();
    assert_eq!(r.phone.linefeed(), LinefeedCode::ReverseOht);
    r.slic.set_polarity(false).unwrap();
    assert_eq!(r.phone.linefeed(), LinefeedCode::ForwardOht);
    r.slic.set_linefeed(Linefeed::ReverseActive).unwrap();
    assert!(r.phone.polarity_reversed());
    assert_eq!(
        r.slic.actual_linefeed().unwrap(),
        LinefeedCode::ReverseActive
    );
}

#[test]
fn loop_closure_is_only_seen_with_feed_on() {
    let mut r = rig();
    r.slic.set_linefeed(Linefeed::Open).unwrap();
    r.phone.off_hook(r.at(ms(100)));
    assert_eq!(
        r.poll(r.at(ms(100))),
        vec![],
        "no loop current, no detection"
    );
    r.slic.set_linefeed(Linefeed::ForwardActive).unwrap();
    assert_eq!(r.poll(r.at(ms(200))), vec![hook(true, r.at(ms(200)))]);
}

#[test]
fn phone_off_hook_before_init_is_reported_after_init() {
    let mut r = bare();
    r.phone.off_hook(r.t0);
    r.slic
        .init(
            &mut RecordingDelay::default(),
            &BoardFile::parse(SIM_BOARD).unwrap(),
        )
        .unwrap();
    let now = r.at(ms(50));
    assert_eq!(r.poll(now), vec![hook(true, now)]);
}

#[test]
fn configure_pcm_sets_the_chip_registers() {
    let mut r = rig();
    let cases = [
        (PcmCodec::ALaw, regs::PCM_FMT_ALAW),
        (PcmCodec::MuLaw, regs::PCM_FMT_ULAW),
        (PcmCodec::Linear16, regs::PCM_FMT_LINEAR16),
    ];
    for (codec, fmt) in cases {
        r.slic
            .configure_pcm(PcmConfig {
                timeslot_tx: 4,
                timeslot_rx: 100,
                codec,
            })
            .unwrap();
        assert_eq!(r.chip.register(Register::PcmMode), regs::PCMMODE_EN | fmt);
        assert_eq!(r.chip.register(Register::PcmTxLo), 32);
        assert_eq!(r.chip.register(Register::PcmTxHi), 0);
        assert_eq!(r.chip.register(Register::PcmRxLo), (800u16 & 0xFF) as u8);
        assert_eq!(r.chip.register(Register::PcmRxHi), (800u16 >> 8) as u8);
    }
}

#[test]
fn ram_round_trips_through_the_driver() {
    let mut r = rig();
    r.slic.write_ram(0x0123, 0xDEAD_BEEF).unwrap();
    assert_eq!(r.chip.ram(0x0123), Some(0xDEAD_BEEF));
    assert_eq!(r.slic.read_ram(0x0123).unwrap(), 0xDEAD_BEEF);
    assert_eq!(
        r.slic.read_ram(0x0600).unwrap(),
        0x00A5_F00D,
        "from the board file"
    );
}

#[test]
fn ram_busy_forever_is_a_timeout() {
    let mut r = rig();
    r.chip.set_ram_busy_polls(None);
    assert_eq!(
        r.slic.write_ram(0x0010, 1),
        Err(Error::RamTimeout { addr: 0x0010 })
    );

    let mut r = bare();
    r.chip.set_ram_busy_polls(None);
    let err = r.slic.init(
        &mut RecordingDelay::default(),
        &BoardFile::parse(SIM_BOARD).unwrap(),
    );
    assert_eq!(
        err,
        Err(Error::RamTimeout { addr: 0x0600 }),
        "first RAM line of the board file"
    );
}

#[test]
fn ram_busy_for_a_while_is_waited_out() {
    let mut r = rig();
    r.chip.set_ram_busy_polls(Some(regs::RAM_POLL_LIMIT - 1));
    assert_eq!(r.slic.write_ram(0x0010, 7), Ok(()));
    r.chip.set_ram_busy_polls(Some(regs::RAM_POLL_LIMIT));
    assert_eq!(
        r.slic.write_ram(0x0011, 7),
        Err(Error::RamTimeout { addr: 0x0011 })
    );
}

#[test]
fn bus_errors_are_kept() {
    let mut r = rig();
    r.chip.fail_next_transaction(ErrorKind::ModeFault);
    assert_eq!(
        r.slic.set_linefeed(Linefeed::Open),
        Err(Error::Spi(VirtualSpiError(ErrorKind::ModeFault)))
    );
    assert_eq!(
        r.slic.linefeed(),
        Linefeed::ForwardActive,
        "shadow unchanged on failure"
    );
}

struct Case {
    text: &'static str,
    line: usize,
    msg: &'static str,
}

#[test]
fn board_file_errors_name_the_line() {
    let cases = [
        Case {
            text: "reg 0x10 0x01\nfoo 1 2\n",
            line: 2,
            msg: "unknown command `foo` (expected reg, ram or delay)",
        },
        Case {
            text: "# c\n\nreg 0x10\n",
            line: 3,
            msg: "`reg` takes 2 arguments (ADDR VALUE), found 1",
        },
        Case {
            text: "reg 0x10 0x01 0x02\n",
            line: 1,
            msg: "`reg` takes 2 arguments (ADDR VALUE), found 3",
        },
        Case {
            text: "reg 0x100 0x01\n",
            line: 1,
            msg: "register address 0x100 out of range (max 0xff)",
        },
        Case {
            text: "reg 0x10 256\n",
            line: 1,
            msg: "register value 256 out of range (max 0xff)",
        },
        Case {
            text: "ram 0x10000 1\n",
            line: 1,
            msg: "RAM address 0x10000 out of range (max 0xffff)",
        },
        Case {
            text: "ram 0x10 0x100000000\n",
            line: 1,
            msg: "RAM value 0x100000000 out of range (max 0xffffffff)",
        },
        Case {
            text: "ram 0x1g 1\n",
            line: 1,
            msg: "RAM address `0x1g` is not a number",
        },
        Case {
            text: "ram -1 1\n",
            line: 1,
            msg: "RAM address `-1` is not a number",
        },
        Case {
            text: "delay\n",
            line: 1,
            msg: "`delay` takes 1 argument (MS), found 0",
        },
        Case {
            text: "delay 10001\n",
            line: 1,
            msg: "delay 10001 out of range (max 0x2710)",
        },
        Case {
            text: "\n\n\n\nram 1 2 # ok\nREG 1 2\n",
            line: 6,
            msg: "unknown command `REG` (expected reg, ram or delay)",
        },
    ];
    for c in cases {
        assert_eq!(
            BoardFile::parse(c.text),
            Err(BoardFileError {
                line: c.line,
                msg: c.msg.to_string()
            }),
            "{:?}",
            c.text
        );
    }
}

#[test]
fn board_file_error_message_names_the_line() {
    let err = BoardFile::parse("reg 1 2\nwat\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "board file line 2: unknown command `wat` (expected reg, ram or delay)"
    );
}

#[test]
fn board_file_comments_blank_lines_and_number_bases() {
    let board =
        BoardFile::parse("  # header\n\nreg 10 0x0A # trailing\n\tram 0X20 4294967295\ndelay 0\n")
            .unwrap();
    use pbx_hal::fxs::board_file::{BoardCommand as C, BoardEntry as E};
    assert_eq!(
        board.entries(),
        &[
            E {
                line: 3,
                command: C::Reg {
                    addr: 10,
                    value: 10
                }
            },
            E {
                line: 4,
                command: C::Ram {
                    addr: 0x20,
                    value: u32::MAX
                }
            },
            E {
                line: 5,
                command: C::Delay { ms: 0 }
            },
        ]
    );
}

#[test]
fn board_file_may_not_write_driver_owned_registers() {
    for (addr, name) in [
        (0x1E, "LINEFEED"),
        (0x16, "IRQEN1"),
        (0x1D, "POLREV"),
        (0x00, "ID"),
    ] {
        let mut r = bare();
        let text = format!("ram 0x10 1\nreg {addr:#04x} 0x01\n");
        let board = BoardFile::parse(&text).unwrap();
        let err = r
            .slic
            .init(&mut RecordingDelay::default(), &board)
            .unwrap_err();
        assert_eq!(
            err,
            Error::BoardFile(BoardFileError {
                line: 2,
                msg: format!("register {addr:#04x} is controlled by the driver"),
            }),
            "{name}"
        );
    }
}

#[test]
fn the_chip_answers_only_its_channel() {
    let mut r = bare();
    r.chip.set_channel(5);
    let board = BoardFile::parse(SIM_BOARD).unwrap();
    // Nobody drives MISO for channel 0: the bus floats high.
    let err = r
        .slic
        .init(&mut RecordingDelay::default(), &board)
        .unwrap_err();
    assert_eq!(err, Error::WrongChipId { found: 0xFF });

    let (spi, reset, irq) = r.slic.destroy();
    let mut slic = Slic::new(spi, reset, irq).with_channel(5);
    slic.init(&mut RecordingDelay::default(), &board).unwrap();
    assert_eq!(r.phone.linefeed(), LinefeedCode::ForwardActive);
}

#[test]
fn emulator_frames_work_full_duplex_and_count_malformed_ones() {
    use embedded_hal::spi::{Operation, SpiDevice};
    let r = bare();
    let mut spi = r.chip.clone();
    // Read ID in one full-duplex frame: the data comes out during the third byte.
    let mut frame = [regs::CTL_READ, Register::Id.addr(), 0x00];
    spi.transaction(&mut [Operation::TransferInPlace(&mut frame)])
        .unwrap();
    assert_eq!(frame, [0xFF, 0xFF, regs::CHIP_ID]);
    // Write LINEFEED with a transfer, then read it back with write + read.
    let mut miso = [0u8; 3];
    spi.transaction(&mut [Operation::Transfer(
        &mut miso,
        &[0x00, Register::Linefeed.addr(), 0x01],
    )])
    .unwrap();
    let mut lf = [0u8];
    spi.transaction(&mut [
        Operation::Write(&[regs::CTL_READ, Register::Linefeed.addr()]),
        Operation::Read(&mut lf),
    ])
    .unwrap();
    assert_eq!(
        lf[0], 0x11,
        "requested forward active (bits 2..0) and actual (bits 6..4)"
    );
    assert_eq!(r.chip.protocol_errors(), 0);

    spi.transaction(&mut [Operation::Write(&[0x00, 0x30])])
        .unwrap(); // no data byte
    spi.transaction(&mut [Operation::Write(&[0x00, 0x30, 1, 2])])
        .unwrap(); // extra byte
    spi.transaction(&mut [Operation::Write(&[
        regs::CTL_READ | regs::CTL_BROADCAST,
        0x00,
        0,
    ])])
    .unwrap();
    assert_eq!(r.chip.protocol_errors(), 3);
    assert_eq!(
        r.chip.register(Register::RingTaLo),
        1,
        "the well-formed part of the long frame"
    );
}

#[test]
fn the_chip_is_deaf_while_held_in_reset() {
    use embedded_hal::digital::OutputPin;
    let mut r = rig();
    let mut reset = r.chip.reset_pin();
    reset.set_low().unwrap();
    assert_eq!(r.slic.read_register(Register::Id).unwrap(), 0xFF);
    r.slic.set_polarity(true).unwrap();
    reset.set_high().unwrap();
    assert_eq!(
        r.chip.register(Register::PolRev),
        0,
        "write ignored, then reset"
    );
    assert_eq!(
        r.phone.linefeed(),
        LinefeedCode::Open,
        "reset drops the feed"
    );
    assert_eq!(r.chip.writes().last(), Some(&ChipWrite::HardReset));
}
