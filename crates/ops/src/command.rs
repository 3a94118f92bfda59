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
}

impl Child {
    /// A hook: `sh -c <command>`.
    pub fn hook(flag: &str, command: &str) -> Child {
        Child {
            what: format!("hook {flag}"),
            program: "sh".into(),
            args: vec!["-c".into(), command.into()],
            env: Vec::new(),
            shown: command.to_string(),
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
        }
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Child {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Runs the command to completion, logging each line of its stdout and stderr. A non-zero
    /// exit, a death by signal, or a failure to start is [`OpsError::CommandFailed`].
    ///
    /// The child writes into pipes and gets `NO_COLOR=1`, so no ANSI colour codes reach the
    /// relayed lines (our own binaries colour only a terminal; other tools honour `NO_COLOR`).
    pub fn run(&self) -> Result<()> {
        tracing::info!(what = %self.what, command = %self.shown, "running");
        let failed = |outcome: String, code: Option<i32>| OpsError::CommandFailed {
            what: self.what.clone(),
            command: self.shown.clone(),
            outcome,
            code,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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
        let status = std::thread::scope(|scope| {
            for (stream, pipe) in ["stdout", "stderr"].into_iter().zip(pipes) {
                let Some(pipe) = pipe else { continue };
                let what = &what;
                scope.spawn(move || {
                    for line in BufReader::new(pipe).split(b'\n').map_while(|l| l.ok()) {
                        let line = String::from_utf8_lossy(&line);
                        tracing::info!(target: "thywill_ops::child", "{what} {stream}: {}", line.trim_end());
                    }
                });
            }
            child.wait()
        })
        .map_err(|e| failed(format!("could not be waited for: {e}"), None))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => Err(failed(format!("exited with code {code}"), Some(code))),
            None => Err(failed("was killed by a signal".into(), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
