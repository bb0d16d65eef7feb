//! iotop-c's keys, each checked by what it does to the screen, the settings or the sampler.

use ratatui::style::{Color, Modifier};

use super::*;
use crate::settings::{Charset, ColorChoice, ExitedMark, GraphSource, HelpType, Settings};
use crate::view::tui::effects;

fn busy_state() -> (ViewState, Refresh) {
    let state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    (state, r)
}

fn ctrl(c: char) -> KeyEvent {
    with(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn on(state: &mut ViewState, code: KeyCode) -> Action {
    state.on_key(key(code), Geometry::default())
}

/// The line of column titles: under the totals, the sort line and the source line.
fn header_of(lines: &[String]) -> &str {
    assert!(lines[3].starts_with("source:"), "{lines:#?}");
    &lines[4]
}

/// The screen line of the row whose command is `name`.
fn row_line<'l>(lines: &'l [String], name: &str) -> &'l str {
    lines
        .iter()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} row in {lines:#?}"))
}

#[test]
fn q_and_capital_q_quit() {
    let (mut state, _) = busy_state();
    assert_eq!(on(&mut state, KeyCode::Char('Q')), Action::Quit);
    assert_eq!(on(&mut state, KeyCode::Char('q')), Action::Quit);
}

#[test]
fn space_and_r_reverse_the_sort() {
    let (mut state, r) = busy_state();
    state.sort = Column::Id;
    assert_eq!(
        ids(&screen(120, 12, Some(&r), &state)),
        [1, 777, 4242, 31337]
    );
    on(&mut state, KeyCode::Char(' '));
    assert_eq!(
        ids(&screen(120, 12, Some(&r), &state)),
        [31337, 4242, 777, 1]
    );
    on(&mut state, KeyCode::Char('r'));
    assert_eq!(
        ids(&screen(120, 12, Some(&r), &state)),
        [1, 777, 4242, 31337]
    );
    on(&mut state, KeyCode::Char('R'));
    assert!(!state.reverse, "R reverses the history, not the sort");
    assert!(state.settings.reverse_graph);
}

#[test]
fn a_cycles_accumulated_average_and_current() {
    let (mut app, mut commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    let mut seen = Vec::new();
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('a'));
        let Some(SamplerCommand::Rows { amounts, .. }) = commands.try_recv().ok() else {
            panic!("a tells the sampler");
        };
        let info = screen(120, 6, None, &app.state)[1].clone();
        seen.push((amounts, app.state.view.accumulated, info));
    }
    assert_eq!(seen[0].0, Amounts::Accumulated);
    assert!(
        seen[0].1 && seen[0].2.contains("| accumulated |"),
        "{seen:?}"
    );
    assert_eq!(seen[1].0, Amounts::AverageSinceStart);
    assert!(
        !seen[1].1 && seen[1].2.contains("| average since start |"),
        "rates, over the time since the start: {seen:?}"
    );
    assert_eq!(seen[2].0, Amounts::Current);
    assert!(!seen[2].1 && !seen[2].2.contains("average"), "{seen:?}");
}

#[test]
fn question_mark_toggles_the_inline_help_and_h_the_window() {
    let (mut state, r) = busy_state();
    let last = |state: &ViewState| screen(140, 12, Some(&r), state)[11].clone();
    assert!(!last(&state).contains("q quit"));
    on(&mut state, KeyCode::Char('?'));
    assert_eq!(state.settings.help, HelpType::Inline);
    assert!(
        last(&state).starts_with("q quit  r sort"),
        "{}",
        last(&state)
    );
    on(&mut state, KeyCode::Char('?'));
    assert!(!last(&state).contains("q quit"));

    on(&mut state, KeyCode::Char('H'));
    assert!(state.help);
    assert!(screen(120, 40, Some(&r), &state)
        .iter()
        .any(|l| l.contains("ionice a task")));
    on(&mut state, KeyCode::Esc);
    assert!(!state.help, "Esc closes the help window");
    assert!(state.filter.is_none());
}

#[test]
fn number_keys_hide_iotop_c_s_columns_and_0_shows_all() {
    let (mut state, r) = busy_state();
    let header = |state: &ViewState| header_of(&screen(220, 12, Some(&r), state)).to_string();
    assert!(header(&state).contains("PRIO") && header(&state).contains("USER"));
    on(&mut state, KeyCode::Char('2'));
    on(&mut state, KeyCode::Char('3'));
    let h = header(&state);
    assert!(!h.contains("PRIO") && !h.contains("USER"), "{h}");
    assert!(h.contains("DISK READ"), "{h}");
    on(&mut state, KeyCode::Char('4'));
    on(&mut state, KeyCode::Char('8'));
    let h = header(&state);
    assert!(!h.contains("DISK READ") && !h.contains("HISTORY"), "{h}");
    on(&mut state, KeyCode::Char('2'));
    assert!(
        header(&state).contains("PRIO"),
        "pressed again, shown again"
    );
    // Hiding the sort column sorts by DISK WRITE.
    assert_eq!(state.sort, Column::Counter(Counter::BlkioDelay));
    on(&mut state, KeyCode::Char('7'));
    assert_eq!(state.sort, Column::Counter(Counter::WriteBytes));
    on(&mut state, KeyCode::Char('0'));
    let h = header(&state);
    for title in [
        "TID",
        "PRIO",
        "USER",
        "DISK READ",
        "IO>",
        "HISTORY",
        "RCHAR",
    ] {
        assert!(h.contains(title), "0 shows {title}: {h}");
    }
    for n in '1'..='9' {
        on(&mut state, KeyCode::Char(n));
    }
    // profiler's own columns have no number: w, or --hide-NAME.
    assert_eq!(
        header(&state).trim_end(),
        "CONTAINER  READ SYSCALLS/s  WRITE SYSCALLS/s        RCHAR  WCHAR"
    );
    on(&mut state, KeyCode::Char('w'));
    for c in [
        crate::settings::Column::Container,
        crate::settings::Column::Syscalls,
    ] {
        state.settings.columns.insert(c, false);
    }
    assert_eq!(
        screen(120, 12, Some(&r), &state)[4].trim_end(),
        "every column is hidden: 0 shows them all"
    );
}

#[test]
fn c_shows_command_lines_as_ps_does() {
    let me = std::process::id();
    let tasks = [
        task(me, 0, "tests", all([0, 1 << 20, 0, 0, 0, 0, 0, 0])),
        // kthreadd: a kernel thread, with no command line of its own.
        task(2, 0, "kthreadd", all([0, 0, 0, 0, 0, 0, 0, 0])),
    ];
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.on_sample(SamplerEvent::Refresh(Box::new(refresh(vec![(
        SourceKind::Taskstats,
        model_of(&tasks, false),
    )]))));
    app.state.sort = Column::Id;
    let ids = vec![2, me];
    assert!(!app.look_up_cmdlines(&ids), "nothing read without c");
    press(&mut app, KeyCode::Char('c'));
    assert!(app.look_up_cmdlines(&ids), "read for the rows drawn");
    assert!(!app.look_up_cmdlines(&ids), "once");
    let lines = screen(200, 10, app.current.as_ref(), &app.state);
    let argv0 = std::env::args().next().expect("argv[0]");
    assert!(row_line(&lines, "[kthreadd]")
        .trim_start()
        .starts_with("2 "));
    assert!(
        row_line(&lines, &argv0)
            .trim_start()
            .starts_with(&me.to_string()),
        "{lines:#?}"
    );
    // A refresh without kthreadd: its command line is forgotten.
    app.on_sample(SamplerEvent::Refresh(Box::new(refresh(vec![(
        SourceKind::Taskstats,
        model_of(&tasks[..1], false),
    )]))));
    assert_eq!(app.state.cmdlines.len(), 1);
    press(&mut app, KeyCode::Char('C'));
    let lines = screen(200, 10, app.current.as_ref(), &app.state);
    assert!(
        row_line(&lines, &me.to_string())
            .trim_end()
            .ends_with(" tests"),
        "the command name again: {lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains(&argv0)));
}

/// A refresh where 4242 only reads and 777 only writes, recorded three times.
fn graph_state() -> (ViewState, Refresh) {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let tasks = [
        task(4242, 0, "reader", all([1 << 20, 0, 0, 0, 1, 0, 0, 0])),
        task(777, 0, "writer", all([0, 1 << 20, 0, 0, 0, 1, 0, 0])),
    ];
    let r = refresh(vec![(SourceKind::Taskstats, model_of(&tasks, false))]);
    for _ in 0..3 {
        state.record(&r);
    }
    state.sort = Column::Id;
    (state, r)
}

#[test]
fn g_and_capital_g_cycle_what_the_history_plots() {
    let (mut state, r) = graph_state();
    let history = |state: &ViewState, name: &str| {
        let lines = screen(140, 8, Some(&r), state);
        row_line(&lines, name).matches('█').count()
    };
    // By the sort column; the TID has no history, so DISK WRITE's.
    assert_eq!(
        (history(&state, "reader"), history(&state, "writer")),
        (0, 3)
    );
    on(&mut state, KeyCode::Char('g'));
    assert_eq!(state.settings.graph, GraphSource::Io);
    on(&mut state, KeyCode::Char('g'));
    assert_eq!(state.settings.graph, GraphSource::Read);
    assert_eq!(
        (history(&state, "reader"), history(&state, "writer")),
        (3, 0)
    );
    on(&mut state, KeyCode::Char('g'));
    assert_eq!(
        (history(&state, "reader"), history(&state, "writer")),
        (0, 3)
    );
    on(&mut state, KeyCode::Char('g'));
    assert_eq!(state.settings.graph, GraphSource::ReadWrite);
    assert_eq!(
        (history(&state, "reader"), history(&state, "writer")),
        (3, 3)
    );
    on(&mut state, KeyCode::Char('G'));
    assert_eq!(state.settings.graph, GraphSource::Write);
    assert!(screen(140, 8, Some(&r), &state)[2].contains("graph: w"));
}

#[test]
fn capital_r_reverses_and_u_draws_the_history_in_ascii() {
    let (mut state, r) = graph_state();
    state.settings.graph = GraphSource::Read;
    let cell = |state: &ViewState| {
        let lines = screen(140, 8, Some(&r), state);
        let header = header_of(&lines);
        let at = header.find("HISTORY").expect("the history column");
        let at = header[..at].chars().count();
        row_line(&lines, "reader")
            .chars()
            .skip(at)
            .take(8)
            .collect::<String>()
    };
    // Three refreshes recorded: the newest on the right.
    assert_eq!(cell(&state), "     ███");
    on(&mut state, KeyCode::Char('R'));
    assert_eq!(cell(&state), "███     ", "the newest on the left");
    on(&mut state, KeyCode::Char('R'));
    on(&mut state, KeyCode::Char('u'));
    assert_eq!(state.settings.charset, Charset::Ascii);
    assert_eq!(cell(&state), "     ###");
    on(&mut state, KeyCode::Char('U'));
    assert_eq!(cell(&state), "     ███");
}

/// The style of the first cell of `text` on a 140x8 screen.
fn style_at(state: &ViewState, r: &Refresh, text: &str) -> ratatui::style::Style {
    let mut terminal = Terminal::new(TestBackend::new(140, 8)).expect("test terminal");
    terminal
        .draw(|f| {
            draw(f, Some(r), state);
        })
        .expect("drawing");
    let buf = terminal.backend().buffer();
    for y in 0..8 {
        let line: String = (0..140).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(at) = line.find(text) {
            let x = line[..at].chars().count() as u16;
            return buf[(x, y)].style();
        }
    }
    panic!("no {text} on screen");
}

#[test]
fn l_turns_colours_off_and_on_and_no_color_starts_without() {
    let (mut state, r) = graph_state();
    state.settings.graph = GraphSource::Read;
    assert_eq!(style_at(&state, &r, "███").fg, Some(Color::Cyan));
    on(&mut state, KeyCode::Char('l'));
    assert_eq!(state.settings.color, ColorChoice::Never);
    assert_eq!(style_at(&state, &r, "███").fg, Some(Color::Reset));
    on(&mut state, KeyCode::Char('L'));
    assert_eq!(style_at(&state, &r, "███").fg, Some(Color::Cyan));

    let no_color = state_for(sources(&[SourceKind::Taskstats], Vec::new())).with_settings(
        Settings {
            graph: GraphSource::Read,
            ..Settings::default()
        },
        None,
        true,
    );
    let mut no_color = no_color;
    for _ in 0..3 {
        no_color.record(&r);
    }
    assert!(!no_color.colored(), "NO_COLOR");
    assert_eq!(style_at(&no_color, &r, "███").fg, Some(Color::Reset));
    on(&mut no_color, KeyCode::Char('l'));
    assert!(
        no_color.colored(),
        "l asks for colours whatever NO_COLOR says"
    );
}

fn with_exited() -> (ViewState, Refresh) {
    let (mut state, _) = graph_state();
    state.settings.graph = GraphSource::Read;
    let tasks = [
        task(4242, 0, "reader", all([1 << 20, 0, 0, 0, 1, 0, 0, 0])),
        task(777, 0, "writer", all([0, 1 << 20, 0, 0, 0, 1, 0, 0])),
    ];
    let mut model = model_of(&tasks, false);
    model.rows[1].exited = true;
    let r = refresh(vec![(SourceKind::Taskstats, model)]);
    state.record(&r);
    (state, r)
}

#[test]
fn x_marks_exited_tasks_with_x_instead_of_a_reversed_row() {
    let (mut state, r) = with_exited();
    let style = style_at(&state, &r, "writer <exited>");
    assert!(style.add_modifier.contains(Modifier::REVERSED), "{style:?}");
    on(&mut state, KeyCode::Char('x'));
    assert_eq!(state.settings.exited, ExitedMark::DeadX);
    let style = style_at(&state, &r, "writer <exited>");
    assert!(
        !style.add_modifier.contains(Modifier::REVERSED),
        "{style:?}"
    );
    let lines = screen(140, 8, Some(&r), &state);
    assert!(
        row_line(&lines, "writer").contains("xxxxxxxx"),
        "{lines:#?}"
    );
    assert!(!row_line(&lines, "reader").contains('x'));
    on(&mut state, KeyCode::Char('X'));
    assert_eq!(state.settings.exited, ExitedMark::Background);
}

#[test]
fn e_hides_exited_tasks() {
    let (mut state, r) = with_exited();
    assert_eq!(ids(&screen(140, 8, Some(&r), &state)), [777, 4242]);
    on(&mut state, KeyCode::Char('e'));
    assert_eq!(ids(&screen(140, 8, Some(&r), &state)), [4242]);
    assert!(screen(140, 8, Some(&r), &state)[2].contains("exited hidden"));
    on(&mut state, KeyCode::Char('E'));
    assert_eq!(ids(&screen(140, 8, Some(&r), &state)), [777, 4242]);
}

#[test]
fn ctrl_b_and_ctrl_r_scale_the_amounts() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let tasks = [task(9, 0, "w", all([0, 1_500_000, 0, 0, 0, 0, 0, 0]))];
    let r = refresh(vec![(SourceKind::Taskstats, model_of(&tasks, false))]);
    let total = |state: &ViewState| screen(140, 8, Some(&r), state)[0].clone();
    assert!(
        total(&state).contains("Total DISK WRITE: 1.43 M/s"),
        "{}",
        total(&state)
    );
    state.on_key(ctrl('b'), Geometry::default());
    assert!(state.settings.si);
    assert!(
        total(&state).contains("Total DISK WRITE: 1.50 M/s"),
        "{}",
        total(&state)
    );
    assert!(row_line(&screen(140, 8, Some(&r), &state), " w").contains("1.50 M/s"));
    state.on_key(ctrl('b'), Geometry::default());
    // Threshold 2: a unit is kept up to twice the next one.
    state.on_key(ctrl('r'), Geometry::default());
    assert_eq!(state.settings.threshold.get(), 2);
    assert!(
        total(&state).contains("Total DISK WRITE: 1464.84 K/s"),
        "{}",
        total(&state)
    );
    for _ in 0..9 {
        state.on_key(ctrl('r'), Geometry::default());
    }
    assert_eq!(state.settings.threshold.get(), 1, "10, then 1 again");
}

#[test]
fn ctrl_l_redraws() {
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    assert_eq!(
        app.state.on_key(ctrl('l'), Geometry::default()),
        Action::Redraw
    );
    app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('l'))))
        .expect("key handled");
    assert!(app.redraw, "the terminal is cleared before the next frame");
}

#[test]
fn ctrl_t_flips_the_delayacct_file_and_says_what_it_means() {
    let dir = std::env::temp_dir().join(format!("tui-delayacct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("task_delayacct");
    std::fs::write(&file, "0\n").expect("writing");
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.delayacct = file.clone();
    app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('t'))))
        .expect("key handled");
    assert_eq!(std::fs::read_to_string(&file).expect("reading"), "1");
    let status = app.state.status.clone().expect("a status");
    assert!(
        status.contains("on: only tasks started from now on are measured"),
        "{status}"
    );
    let lines = screen(140, 8, None, &app.state);
    assert!(
        lines.iter().any(|l| l.contains("kernel.task_delayacct on")),
        "{lines:#?}"
    );
    app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('t'))))
        .expect("key handled");
    assert_eq!(std::fs::read_to_string(&file).expect("reading"), "0");
    std::fs::remove_dir_all(&dir).expect("removing temp dir");
    app.delayacct = dir.join("gone");
    app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('t'))))
        .expect("key handled");
    let status = app.state.status.clone().expect("a status");
    assert!(status.contains("No such file"), "{status}");
}

#[test]
fn capital_w_writes_the_settings_and_says_where() {
    let dir = std::env::temp_dir().join(format!("tui-config-{}", std::process::id()));
    let path = dir.join("profiler").join("config");
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.state.config_path = Some(path.clone());
    press(&mut app, KeyCode::Char('o'));
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('W'));
    let saved = crate::config::load(&path).expect("the file written");
    assert_eq!(saved, app.state.settings);
    assert!(saved.only && saved.graph == GraphSource::Io);
    assert!(!saved.shows(crate::settings::Column::Prio, true));
    let status = app.state.status.clone().expect("a status");
    assert_eq!(status, format!("settings written to {}", path.display()));
    let lines = screen(140, 8, None, &app.state);
    assert!(
        lines.iter().any(|l| l.contains("settings written to")),
        "{lines:#?}"
    );
    press(&mut app, KeyCode::Down);
    assert_eq!(app.state.status, None, "until the next key");

    // A file where the directory should be: the error in the status line.
    std::fs::write(dir.join("file"), "").expect("a file");
    app.state.config_path = Some(dir.join("file").join("config"));
    press(&mut app, KeyCode::Char('W'));
    let status = app.state.status.clone().expect("a status");
    assert!(status.starts_with("settings not written: "), "{status}");
    std::fs::remove_dir_all(&dir).expect("removing temp dir");

    app.state.config_path = None;
    press(&mut app, KeyCode::Char('W'));
    assert!(app
        .state
        .status
        .as_deref()
        .is_some_and(|s| s.contains("HOME")));
}

#[test]
fn capital_d_resets_every_setting() {
    let (mut app, mut commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    for k in ['p', 'a', 'c', 'g', 'R', 'u', 'x', 'e', '3', 'o'] {
        press(&mut app, KeyCode::Char(k));
    }
    app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('b'))))
        .expect("key handled");
    assert_ne!(app.state.settings, Settings::default());
    while commands.try_recv().is_ok() {}
    press(&mut app, KeyCode::Char('D'));
    assert_eq!(app.state.settings, Settings::default());
    assert!(!app.state.view.only && !app.state.view.hide_exited && !app.state.view.accumulated);
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: false,
            containers: false,
            amounts: Amounts::Current
        })
    );
}

#[test]
fn f_filters_by_user_then_by_process() {
    let (mut state, r) = busy_state();
    on(&mut state, KeyCode::Char('F'));
    on(&mut state, KeyCode::Enter);
    assert!(
        state
            .input
            .as_ref()
            .is_some_and(|i| i.kind == super::super::state::InputKind::Pid),
        "then the processes"
    );
    type_in(&mut state, "777 x");
    on(&mut state, KeyCode::Enter);
    assert_eq!(
        state.input.as_ref().and_then(|i| i.error.as_deref()),
        Some("`x` is not a process id")
    );
    on(&mut state, KeyCode::Backspace);
    type_in(&mut state, "1");
    on(&mut state, KeyCode::Enter);
    assert!(state.input.is_none());
    assert_eq!(state.pids, [777, 1]);
    let lines = screen(120, 12, Some(&r), &state);
    assert_eq!(ids(&lines), [777, 1]);
    assert!(lines[2].contains("pid: 777,1"), "{}", lines[2]);
    on(&mut state, KeyCode::Esc);
    assert_eq!(ids(&screen(120, 12, Some(&r), &state)).len(), 4);
}

#[test]
fn i_asks_for_the_task_class_and_level() {
    let (mut state, _) = busy_state();
    let top = Geometry {
        top: Some(777),
        ..Geometry::default()
    };
    state.on_key(key(KeyCode::Char('i')), top);
    assert_eq!(prompt(&state), ("777", 3), "the first row on screen");
    on(&mut state, KeyCode::Enter);
    assert_eq!(prompt(&state).0, "be");
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "xx");
    on(&mut state, KeyCode::Enter);
    assert!(state.input.as_ref().is_some_and(|i| i.error.is_some()));
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "rt");
    on(&mut state, KeyCode::Enter);
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "9");
    assert_eq!(
        on(&mut state, KeyCode::Enter),
        Action::None,
        "levels are 0-7"
    );
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "3");
    assert_eq!(
        on(&mut state, KeyCode::Enter),
        Action::Ionice {
            id: 777,
            process: false,
            prio: IoPrio::Realtime(3)
        }
    );
    assert!(state.input.is_none());
    on(&mut state, KeyCode::Char('p'));
    on(&mut state, KeyCode::Char('i'));
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "4242");
    on(&mut state, KeyCode::Enter);
    state.on_key(ctrl('u'), Geometry::default());
    type_in(&mut state, "idle");
    assert_eq!(
        on(&mut state, KeyCode::Enter),
        Action::Ionice {
            id: 4242,
            process: true,
            prio: IoPrio::Idle
        },
        "idle has no level; in process mode every thread"
    );
}

/// `sleep`, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ioprio_get(pid: u32) -> libc::c_long {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_ioprio_get,
            1 as libc::c_long,
            libc::c_long::from(pid),
        )
    }
}

#[test]
fn i_changes_the_io_priority_of_a_child() {
    let child = Child(
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("starting sleep"),
    );
    let pid = child.0.id();
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.geometry.top = Some(pid);
    let keys = |app: &mut App, text: &str| {
        app.on_keyboard(Ok(crossterm::event::Event::Key(ctrl('u'))))
            .expect("key handled");
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
        press(app, KeyCode::Enter);
    };
    press(&mut app, KeyCode::Char('i'));
    press(&mut app, KeyCode::Enter);
    keys(&mut app, "be");
    keys(&mut app, "7");
    assert_eq!(ioprio_get(pid), (2 << 13) | 7, "best-effort, level 7");
    assert_eq!(
        app.state.status.as_deref(),
        Some(format!("task {pid}: I/O priority be/7").as_str())
    );
    press(&mut app, KeyCode::Char('I'));
    keys(&mut app, &pid.to_string());
    keys(&mut app, "idle");
    assert_eq!(ioprio_get(pid) >> 13, 3, "idle");

    // A task that is gone.
    drop(child);
    let status = effects::ionice(std::path::Path::new("/proc"), pid, false, IoPrio::Idle);
    assert!(status.contains("no such task"), "{status}");
}

#[test]
fn v_tab_and_s_are_profiler_s_own_keys() {
    let (mut state, _) = busy_state();
    assert_eq!(state.grouping(), super::super::state::Grouping::Threads);
    on(&mut state, KeyCode::Char('v'));
    assert_eq!(state.grouping(), super::super::state::Grouping::Processes);
    on(&mut state, KeyCode::Char('V'));
    assert_eq!(state.grouping(), super::super::state::Grouping::Containers);
    on(&mut state, KeyCode::Char('p'));
    assert_eq!(
        state.grouping(),
        super::super::state::Grouping::Threads,
        "p leaves the per-container rows"
    );
    on(&mut state, KeyCode::Char('S'));
    assert!(state.frozen);
    on(&mut state, KeyCode::Char('s'));
    assert!(!state.frozen);
    on(&mut state, KeyCode::Tab);
    assert_eq!(
        state.shown,
        Shown::Source(0),
        "Tab does nothing with one source"
    );
}

#[test]
fn number_keys_hide_columns_of_the_compare_table_too() {
    let mut state = state_for(sources(
        &[SourceKind::Taskstats, SourceKind::Ebpf],
        Vec::new(),
    ));
    let r = refresh(vec![
        (SourceKind::Taskstats, busy_model()),
        (SourceKind::Ebpf, busy_model()),
    ]);
    let header = |state: &ViewState| {
        screen(160, 14, Some(&r), state)
            .into_iter()
            .find(|l| l.contains("DIFF") && !l.starts_with("source"))
            .expect("the compare table's titles")
    };
    let h = header(&state);
    assert!(
        h.contains("TID") && h.contains("USER") && h.contains("COMMAND"),
        "{h}"
    );
    on(&mut state, KeyCode::Char('3'));
    on(&mut state, KeyCode::Char('9'));
    let h = header(&state);
    assert!(!h.contains("USER") && !h.contains("COMMAND"), "{h}");
    assert!(h.contains("TID") && h.contains("taskstats"), "{h}");
}

#[test]
fn help_type_from_the_settings() {
    let start = |help| {
        state_for(sources(&[SourceKind::Taskstats], Vec::new())).with_settings(
            Settings {
                help,
                ..Settings::default()
            },
            None,
            false,
        )
    };
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    let none = screen(140, 12, Some(&r), &start(HelpType::None));
    assert!(!none[2].contains("? help"), "-H none: no hint: {}", none[2]);
    assert!(!none[11].contains("q quit"));
    let win = screen(140, 12, Some(&r), &start(HelpType::Win));
    assert!(win[2].contains("? help") && !win[11].contains("q quit"));
    let inline = screen(140, 12, Some(&r), &start(HelpType::Inline));
    assert!(inline[11].starts_with("q quit"), "{inline:#?}");
}
