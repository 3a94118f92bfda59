//! Running the operator's hook commands (`sh -c`) and the sibling binaries as child processes,
//! with their output logged line by line. One runner for both.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{OpsError, Result};

/// A command to run as a child process.
#[derive(Debug, Clone)]
pub struct Child {
    /// What it is, for messages ("hook --switch-cmd", "thywill-migrate").
    pub what: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How to show the command line in messages (arguments may hold secrets: the caller decides).
    pub shown: String,
    /// An operator's hook: it sees `V2_DB_URL` with the password replaced by `***` unless the
    /// operator opts in with `THYWILL_HOOKS_SEE_SECRETS=1` (our own binaries get the real URL).
    pub is_hook: bool,
    /// A step of the day: SIGINT/SIGTERM received while it runs is sent on to it (and its
    /// children). Every child runs in its own process group, so a terminal's Ctrl-C reaches only
    /// the caller, which relays it once; a rollback's children are never signalled.
    pub relays_signals: bool,
}

/// Set to `1` to give hooks the real `V2_DB_URL`, password included.
pub const HOOKS_SEE_SECRETS: &str = "THYWILL_HOOKS_SEE_SECRETS";

impl Child {
    /// A hook: `sh -c <command>`.
    pub fn hook(flag: &str, command: &str) -> Child {
        Child {
            what: format!("hook {flag}"),
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            env: Vec::new(),
            shown: command.to_string(),
            is_hook: true,
            relays_signals: false,
        }
    }

    /// A program with arguments; `shown` is the command line as messages print it.
    pub fn program(
        what: impl Into<String>,
        program: PathBuf,
        args: Vec<String>,
        shown: impl Into<String>,
    ) -> Child {
        Child {
            what: what.into(),
            program,
            args,
            env: Vec::new(),
            shown: shown.into(),
            is_hook: false,
            relays_signals: false,
        }
    }

    /// Makes it a step that gets the caller's SIGINT/SIGTERM ([`Child::relays_signals`]).
    pub fn relaying_signals(mut self) -> Child {
        self.relays_signals = true;
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Child {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Runs the command to completion, logging each line of its stdout and stderr. A non-zero
    /// exit, a death by signal, or a failure to start is [`OpsError::CommandFailed`], except an
    /// exit 4 of one of our own binaries (not a hook): a refusal for safety,
    /// [`OpsError::ChildRefused`].
    ///
    /// The child writes into pipes and gets `NO_COLOR=1`, so no ANSI colour codes reach the
    /// relayed lines (our own binaries colour only a terminal; other tools honour `NO_COLOR`).
    /// Every relayed line, and the command line as logged, has the v2 password replaced by `***`
    /// and e-mail addresses masked (a `set -x` hook echoes what it is given).
    pub fn run(&self) -> Result<()> {
        let urls = self.v2_urls();
        // The command line as logged and in messages is scrubbed like the output (an operator's
        // hook may spell a password or an address out).
        let shown = scrubbed(&urls, &self.shown);
        tracing::info!(what = %self.what, command = %shown, "running");
        let failed = |outcome: String, code: Option<i32>| OpsError::CommandFailed {
            what: self.what.clone(),
            command: shown.clone(),
            outcome,
            code,
        };
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let opted_in = std::env::var(HOOKS_SEE_SECRETS).is_ok_and(|v| v == "1");
        if self.is_hook && !opted_in {
            if let Some(url) = urls.last() {
                command.env("V2_DB_URL", url.redacted());
            }
        }
        use std::os::unix::process::CommandExt;
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("could not be started: {e}"), None))?;
        let pipes = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ];
        let what = self.what.clone();
        let urls = &urls;
        let status = std::thread::scope(|scope| {
            for (stream, pipe) in ["stdout", "stderr"].into_iter().zip(pipes) {
                let Some(pipe) = pipe else { continue };
                let what = &what;
                scope.spawn(move || {
                    for line in BufReader::new(pipe).split(b'\n').map_while(|l| l.ok()) {
                        let line = scrubbed(urls, &String::from_utf8_lossy(&line));
                        tracing::info!(target: "thywill_ops::child", "{what} {stream}: {line}");
                    }
                });
            }
            self.wait_relaying(&mut child)
        })
        .map_err(|e| failed(format!("could not be waited for: {e}"), None))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(4) if !self.is_hook => Err(OpsError::ChildRefused {
                what: self.what.clone(),
                command: shown.clone(),
            }),
            Some(code) => Err(failed(format!("exited with code {code}"), Some(code))),
            None => Err(failed("was killed by a signal".into(), None)),
        }
    }
}

impl Child {
    /// Waits for `child`; for a step ([`Child::relays_signals`]), the first SIGINT/SIGTERM the
    /// caller receives is sent once to the child's process group (a hook's `sh` and what it runs).
    fn wait_relaying(
        &self,
        child: &mut std::process::Child,
    ) -> std::io::Result<std::process::ExitStatus> {
        if !self.relays_signals {
            return child.wait();
        }
        let mut relayed = false;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if let (false, Some(signal)) = (relayed, thywill_pipeline::interrupt::received()) {
                relayed = true;
                tracing::warn!(what = %self.what, "passing {} on", thywill_pipeline::interrupt::signal_name(signal));
                let group = libc::pid_t::try_from(child.id()).unwrap_or(0);
                if group > 0 {
                    // SAFETY: kill(2) with a negative pid signals that process group only.
                    unsafe {
                        libc::kill(-group, signal);
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The v2 URLs the child can see: ours (`V2_DB_URL`) and the one given to it, last wins.
    fn v2_urls(&self) -> Vec<thywill_v2::Target> {
        std::env::var("V2_DB_URL")
            .ok()
            .into_iter()
            .chain(
                self.env
                    .iter()
                    .filter(|(k, _)| k == "V2_DB_URL")
                    .map(|(_, v)| v.clone()),
            )
            .filter_map(|u| thywill_v2::Target::parse(&u).ok())
            .collect()
    }
}

/// A relayed line: trailing space trimmed, the passwords of `urls` replaced, addresses masked.
fn scrubbed(urls: &[thywill_v2::Target], line: &str) -> String {
    let mut out = line.trim_end().to_string();
    for url in urls {
        out = url.scrub(&out);
    }
    crate::mask::mask_emails(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_see_no_password_and_relayed_lines_hide_it() {
        const URL: &str = "postgresql://thywill:Pa55w0rd!@db.example/thywill_v2";
        // The hook gets the redacted URL (it exits 0 only then).
        Child::hook(
            "--verify-cmd",
            "test \"$V2_DB_URL\" = 'postgresql://thywill:***@db.example/thywill_v2'",
        )
        .with_env("V2_DB_URL", URL)
        .run()
        .unwrap();
        // Our own binaries get the real one.
        Child::program(
            "thywill-validate",
            "sh".into(),
            vec!["-c".into(), format!("test \"$V2_DB_URL\" = '{URL}'")],
            "sh",
        )
        .with_env("V2_DB_URL", URL)
        .run()
        .unwrap();
        let urls = vec![thywill_v2::Target::parse(URL).unwrap()];
        let line = scrubbed(
            &urls,
            &format!("+ psql {URL} -c 'select 1' # mary@example.org  "),
        );
        assert!(!line.contains("Pa55w0rd"), "{line}");
        assert!(!line.contains("mary@"), "{line}");
        assert!(line.ends_with("m•••@example.org"), "{line}");
    }

    #[test]
    fn hook_outcomes_name_the_command() {
        Child::hook("--verify-cmd", "echo fine; echo warn >&2")
            .run()
            .unwrap();
        let e = Child::hook("--switch-cmd", "exit 7").run().unwrap_err();
        assert_eq!(
            e.to_string(),
            "hook --switch-cmd `exit 7` exited with code 7"
        );
        let e = Child::program(
            "thywill-migrate",
            "/nonexistent/bin".into(),
            vec![],
            "/nonexistent/bin",
        )
        .run()
        .unwrap_err();
        assert!(e.to_string().contains("could not be started"), "{e}");
    }

    #[test]
    fn a_refusal_of_our_own_binary_is_a_refusal_a_hooks_exit_4_is_not() {
        let ours = Child::program(
            "thywill-migrate",
            "sh".into(),
            vec!["-c".into(), "exit 4".into()],
            "thywill-migrate",
        );
        let e = ours.run().unwrap_err();
        assert_eq!(e.exit_code(), 4, "{e}");
        assert!(e.to_string().contains("refused for safety"), "{e}");
        let e = Child::hook("--verify-cmd", "exit 4").run().unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
    }
}
