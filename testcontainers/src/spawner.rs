//! Starting broker processes that can never outlive the test process.
//!
//! Each child is started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when its
//! parent goes, even when the parent is itself SIGKILLed or a shared cluster is never dropped.
//! The kernel ties that signal to the *thread* that forked the child, not to the process, and
//! test threads end all the time: so every child is forked by one thread that lives as long as
//! the process.
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Request = (Command, Sender<io::Result<Child>>);

static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();

fn spawner() -> &'static Mutex<Sender<Request>> {
    SPAWNER.get_or_init(|| {
        let (requests, inbox) = channel::<Request>();
        std::thread::Builder::new()
            .name("kmirror-broker-spawner".into())
            .spawn(move || {
                // The sender is static, so this loop (and the thread) ends only with the process.
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "could not start the broker spawner thread"));
        Mutex::new(requests)
    })
}

/// Spawns `command` as a child that dies with this process.
pub(crate) fn spawn_tied(mut command: Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2) and getppid(2),
    // both async-signal-safe; it touches no memory shared with the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
                return Err(io::Error::other("parent exited before the broker started"));
            }
            Ok(())
        });
    }
    let (reply, answer) = channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("broker spawner lock poisoned"))?
        .send((command, reply))
        .map_err(|_| io::Error::other("broker spawner thread is gone"))?;
    answer.recv().map_err(|_| io::Error::other("broker spawner thread is gone"))?
}
