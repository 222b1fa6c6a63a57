//! CGI child processes: starting them with non-blocking pipes, signalling
//! them, and reaping them without ever blocking the event loop.

use crate::handler::CgiCommand;
use mio::unix::pipe::{Receiver, Sender};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The soft open-file limit scripts start with (`u64::MAX`: unchanged).
static CHILD_NOFILE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets the soft open-file limit every script starts with: the one the
/// server itself was started with, before it raised its own.
pub fn set_child_open_file_limit(soft: u64) {
    CHILD_NOFILE.store(soft, Ordering::Relaxed);
}

/// A started script: its pid and the two ends we talk to.
pub struct Child {
    pub pid: u32,
    pub stdin: Sender,
    pub stdout: Receiver,
}

/// Starts the script with stdin and stdout as non-blocking pipes; its
/// stderr is the server's, as in Python. Run by root, it runs as `nobody`.
pub fn spawn(launch: &CgiCommand) -> io::Result<Child> {
    let mut cmd = if launch.python {
        let python = python_interpreter().ok_or_else(|| io::Error::other("no python3 on PATH"))?;
        let mut c = Command::new(python);
        c.arg("-u").arg(&launch.program);
        c
    } else {
        Command::new(&launch.program)
    };
    if let Some(arg) = &launch.argument {
        cmd.arg(arg);
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some((uid, gid)) = nobody() {
        // std also drops supplementary groups when started as root.
        cmd.uid(uid).gid(gid);
    }
    // Its own process group, so stopping a script stops what it started.
    cmd.process_group(0);
    let nofile = CHILD_NOFILE.load(Ordering::Relaxed);
    // SAFETY: the closure runs between fork and exec and only calls
    // sigemptyset, sigprocmask, getrlimit and setrlimit, which are
    // async-signal-safe, on memory of its own.
    unsafe {
        cmd.pre_exec(move || {
            // The server blocks SIGINT, SIGTERM and SIGCHLD for its signalfd;
            // a script must start with none blocked, or SIGTERM would not
            // stop it.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // The server raised its own open-file limit; a script gets the
            // one the server was started with.
            let mut lim: libc::rlimit = std::mem::zeroed();
            if nofile != u64::MAX && libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur = (nofile as libc::rlim_t).min(lim.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        terminate(child.id(), libc::SIGKILL);
        return Err(io::Error::other("child has no pipes"));
    };
    let stdin = Sender::from(stdin);
    let stdout = Receiver::from(stdout);
    stdin.set_nonblocking(true)?;
    stdout.set_nonblocking(true)?;
    // The process is reaped by `reap`, not through std's handle.
    Ok(Child {
        pid: child.id(),
        stdin,
        stdout,
    })
}

/// `nobody`'s uid and gid when we run as root (Python switches to nobody).
fn nobody() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    static NOBODY: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *NOBODY.get_or_init(|| {
        // SAFETY: getpwnam returns a pointer into static storage or null; we
        // copy the two ids out at once, on the only thread there is.
        unsafe {
            let pw = libc::getpwnam(c"nobody".as_ptr());
            (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
        }
    })
}

/// The first `python3` on `PATH` that the script's user can run: as root we
/// run scripts as `nobody`, who cannot enter `/root` (where pyenv lives).
fn python_interpreter() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            let for_nobody = nobody().is_some();
            std::env::split_paths(&path)
                .map(|dir| dir.join("python3"))
                .find(|p| usable(p, for_nobody))
        })
        .clone()
}

fn usable(file: &Path, by_others: bool) -> bool {
    let Ok(target) = std::fs::canonicalize(file) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(&target) else {
        return false;
    };
    if !by_others {
        return meta.is_file() && meta.permissions().mode() & 0o111 != 0;
    }
    let world_x =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    meta.is_file() && world_x(&target) && target.ancestors().skip(1).all(world_x)
}

/// Sends `signal` to the child's process group (the script and whatever it
/// started); a group that is already gone is fine.
pub fn terminate(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-pid, signal) };
    }
}

/// Collects `pid` if it has exited, without blocking: its wait status.
/// Only this pid: a server inside a larger program must not reap the
/// program's own children.
pub fn reap(pid: u32) -> Option<i32> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut status = 0;
    // SAFETY: waitpid writes only `status`.
    let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (got == pid).then_some(status)
}
