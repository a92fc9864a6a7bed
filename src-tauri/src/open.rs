//! Opening a note at a line: in the user's editor when we know how to pass it a
//! line, else in the default app for the file.
//!
//! Order: `SIFT_EDITOR` (a command line where `{file}` and `{line}` are replaced;
//! without `{file}` the path is appended), then `$VISUAL` / `$EDITOR` when it is a
//! graphical editor that takes a line (VS Code and friends, Sublime Text, Zed,
//! gedit, Kate, emacsclient), then the system's default app (the opener plugin).
//! Terminal editors (vim, nano...) are skipped: the app has no terminal to give
//! them. No shell is involved: the path is always one argument.

use std::path::Path;
use std::process::{Command, Stdio};

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorCommand {
    /// The program.
    pub program: String,
    /// Its arguments, path and line included.
    pub args: Vec<String>,
}

/// The editor command for `file` at `line`, from `SIFT_EDITOR`, `VISUAL` or `EDITOR`.
pub fn editor_command(file: &Path, line: usize) -> Option<EditorCommand> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(template) = var("SIFT_EDITOR") {
        return from_template(&template, file, line);
    }
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|name| var(name))
        .find_map(|editor| known_editor(&editor, file, line))
}

/// File types an OS opener would run rather than show (lower case, no dot).
const EXECUTABLE_TYPES: &[&str] = &[
    "app",
    "command",
    "tool",
    "exe",
    "com",
    "bat",
    "cmd",
    "ps1",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "msi",
    "msp",
    "scr",
    "pif",
    "cpl",
    "hta",
    "lnk",
    "reg",
    "sh",
    "bash",
    "zsh",
    "csh",
    "ksh",
    "fish",
    "desktop",
    "jar",
    "appimage",
    "run",
    "bin",
    "deb",
    "rpm",
    "pkg",
    "dmg",
    "workflow",
    "action",
    "scpt",
    "applescript",
    "terminal",
    "url",
    "webloc",
    "inetloc",
];

/// Refuses a file that is executable: its exec bit is set (Unix) or its type
/// is one an OS opener would run (`.app`, `.command`, `.exe`, `.sh`,
/// `.desktop`, `.jar`, `.msi`...). Notes are never handed over as programs.
pub fn refuse_executable(file: &Path) -> sift::Result<()> {
    let refuse = |why: &str| {
        Err(sift::Error::new(
            sift::ErrorKind::InvalidInput,
            format!(
                "{} {why}: Sift does not open executable files",
                file.display()
            ),
        ))
    };
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if EXECUTABLE_TYPES.contains(&ext.as_str()) {
        return refuse("is a program or script by its type");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(file).map_err(|e| sift::Error::io(file, e))?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 != 0 {
            return refuse("is marked executable (chmod -x to open it)");
        }
    }
    Ok(())
}

/// Starts `cmd` without waiting for it (a thread reaps it when it exits).
pub fn spawn(cmd: &EditorCommand) -> std::io::Result<()> {
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::spawn(move || child.wait());
    Ok(())
}

fn from_template(template: &str, file: &Path, line: usize) -> Option<EditorCommand> {
    let file = file.to_string_lossy();
    let line = line.to_string();
    let mut words = template.split_whitespace();
    let program = words.next()?.to_string();
    let mut args: Vec<String> = words
        .map(|w| w.replace("{file}", &file).replace("{line}", &line))
        .collect();
    if !template.contains("{file}") {
        args.push(file.into_owned());
    }
    Some(EditorCommand { program, args })
}

fn known_editor(editor: &str, file: &Path, line: usize) -> Option<EditorCommand> {
    let mut words = editor.split_whitespace();
    let program = words.next()?;
    // Flags that make the editor block are pointless here: we never wait.
    let mut args: Vec<String> = words
        .filter(|w| !matches!(*w, "-w" | "--wait" | "-nw" | "-t"))
        .map(str::to_string)
        .collect();
    let name = Path::new(program)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let file = file.to_string_lossy();
    match name.as_str() {
        "code" | "code-insiders" | "codium" | "vscodium" | "cursor" => {
            args.extend(["-g".to_string(), format!("{file}:{line}")]);
        }
        "subl" | "sublime_text" | "zed" | "zeditor" => args.push(format!("{file}:{line}")),
        "gedit" | "gnome-text-editor" | "emacsclient" | "mousepad" => {
            if name == "emacsclient" && !args.iter().any(|a| a == "-n") {
                args.push("-n".into());
            }
            args.extend([format!("+{line}"), file.into_owned()]);
        }
        "kate" | "kwrite" => args.extend(["-l".to_string(), line.to_string(), file.into_owned()]),
        _ => return None,
    }
    Some(EditorCommand {
        program: program.to_string(),
        args,
    })
}

/// The command that opens PDF `file` at `page` (1-based), when we know how:
/// `SIFT_PDF_VIEWER` (a command line where `{file}` and `{page}` are replaced),
/// else the system's default PDF app (`xdg-mime`) if it takes a page: Evince,
/// Okular, Zathura, qpdfview, or a browser (pdf.js and Chromium read `#page=N`).
/// `None`: open the file with the default app, at its first page.
pub fn pdf_viewer_command(file: &Path, page: u32) -> Option<EditorCommand> {
    if let Some(template) = std::env::var("SIFT_PDF_VIEWER")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let with_page = template.replace("{page}", &page.to_string());
        return from_template(&with_page, file, 1);
    }
    if !cfg!(target_os = "linux") {
        // macOS Preview and the Windows default viewer take no page argument.
        return None;
    }
    let out = Command::new("xdg-mime")
        .args(["query", "default", "application/pdf"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    known_pdf_viewer(String::from_utf8_lossy(&out.stdout).trim(), file, page)
}

/// Arguments for a PDF viewer known by its desktop entry id
/// (`org.gnome.Evince.desktop`), or `None` if it takes no page.
fn known_pdf_viewer(desktop_id: &str, file: &Path, page: u32) -> Option<EditorCommand> {
    let id = desktop_id.to_ascii_lowercase();
    let file = file.to_string_lossy().into_owned();
    let page_s = page.to_string();
    let (program, args): (&str, Vec<String>) = if id.contains("evince") {
        ("evince", vec![format!("--page-index={page}"), file])
    } else if id.contains("okular") {
        ("okular", vec!["-p".into(), page_s, file])
    } else if id.contains("zathura") {
        ("zathura", vec!["-P".into(), page_s, file])
    } else if id.contains("qpdfview") {
        ("qpdfview", vec![format!("{file}#{page}")])
    } else if id.contains("firefox") {
        ("firefox", vec![format!("file://{file}#page={page}")])
    } else if id.contains("chromium") {
        ("chromium", vec![format!("file://{file}#page={page}")])
    } else if id.contains("google-chrome") {
        ("google-chrome", vec![format!("file://{file}#page={page}")])
    } else {
        return None;
    };
    Some(EditorCommand {
        program: program.to_string(),
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(cmd: &EditorCommand) -> Vec<&str> {
        std::iter::once(cmd.program.as_str())
            .chain(cmd.args.iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn executables_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join("note.md");
        std::fs::write(&note, "# note").unwrap();
        assert!(refuse_executable(&note).is_ok());
        for name in [
            "run.sh",
            "Setup.EXE",
            "x.desktop",
            "a.command",
            "t.jar",
            "i.msi",
            "A.app",
        ] {
            let f = dir.path().join(name);
            std::fs::write(&f, "x").unwrap();
            assert!(refuse_executable(&f).is_err(), "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&note, std::fs::Permissions::from_mode(0o755)).unwrap();
            let err = refuse_executable(&note).unwrap_err();
            assert_eq!(err.kind(), sift::ErrorKind::InvalidInput);
            assert!(err.message().contains("marked executable"));
        }
    }

    #[test]
    fn templates_fill_file_and_line() {
        let f = Path::new("/n/a b.md");
        let c = from_template("myedit --line {line} {file}", f, 7).unwrap();
        assert_eq!(strs(&c), ["myedit", "--line", "7", "/n/a b.md"]);
        let c = from_template("myedit", f, 7).unwrap();
        assert_eq!(strs(&c), ["myedit", "/n/a b.md"]);
    }

    #[test]
    fn gui_editors_get_the_line_terminal_editors_are_skipped() {
        let f = Path::new("/n/x.md");
        let c = known_editor("/usr/bin/code --wait", f, 3).unwrap();
        assert_eq!(strs(&c), ["/usr/bin/code", "-g", "/n/x.md:3"]);
        let c = known_editor("emacsclient", f, 3).unwrap();
        assert_eq!(strs(&c), ["emacsclient", "-n", "+3", "/n/x.md"]);
        assert!(known_editor("vim", f, 3).is_none());
        assert!(known_editor("nano", f, 3).is_none());
    }

    #[test]
    fn pdf_viewers_that_take_a_page_get_it() {
        let f = Path::new("/n/paper.pdf");
        let c = known_pdf_viewer("org.gnome.Evince.desktop", f, 3).unwrap();
        assert_eq!(strs(&c), ["evince", "--page-index=3", "/n/paper.pdf"]);
        let c = known_pdf_viewer("okularApplication_pdf.desktop", f, 3).unwrap();
        assert_eq!(strs(&c), ["okular", "-p", "3", "/n/paper.pdf"]);
        let c = known_pdf_viewer("firefox-esr.desktop", f, 12).unwrap();
        assert_eq!(strs(&c), ["firefox", "file:///n/paper.pdf#page=12"]);
        assert!(known_pdf_viewer("libreoffice-draw.desktop", f, 3).is_none());
        assert!(known_pdf_viewer("", f, 3).is_none());
    }
}
