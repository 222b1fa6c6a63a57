//! The worker threads that deferred work runs on (`Exchange::defer`, and
//! every request of a threaded server), and the way their answers come
//! back: a queue the loop drains when a `mio::Waker` wakes it.
//!
//! The pool is bounded twice: at most `threads` jobs run at once, and at
//! most `queue` wait; a job offered to a full pool is handed back and the
//! request answered 503 at once. No thread exists until the first job:
//! a server that never defers has none. An answer whose connection has
//! gone (or was reused for another client since) is dropped on arrival.

use crate::handler::{BodySource, CgiCommand, Config, Exchange, Next, Outcome};
use crate::server::connection::OwnedHead;
use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Work for a worker: the request (copied out of the loop's buffers), and
/// what to run with it.
pub struct Job {
    /// The connection it answers, and which client of that slot.
    pub key: usize,
    pub generation: u64,
    /// Nobody waits for the answer any more: skip the job.
    pub cancelled: Arc<AtomicBool>,
    pub head: OwnedHead,
    /// The body, read by the loop before the job was queued.
    pub body: Option<Vec<u8>>,
    pub keep_alive: bool,
    pub work: Box<dyn FnOnce(&mut Exchange) + Send>,
    pub config: Arc<Config>,
    pub date: [u8; 29],
    pub now: u64,
}

/// What a worker's exchange asked to follow its head, in a form that can
/// cross back to the loop.
pub enum WorkerNext {
    Nothing,
    File { file: File, offset: u64, len: u64 },
    Stream(Box<dyn BodySource + Send>),
    Cgi(Box<CgiCommand>),
}

/// A finished job: the answer's bytes and what follows them.
pub struct Answer {
    pub key: usize,
    pub generation: u64,
    pub bytes: Vec<u8>,
    pub status: u16,
    pub close: bool,
    pub error: Option<String>,
    pub chunked: bool,
    pub bodyless: bool,
    pub stream_length: Option<u64>,
    pub next: WorkerNext,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    answers: Mutex<Vec<Answer>>,
    waker: Arc<mio::Waker>,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Jobs a thread is running now.
    running: usize,
    stop: bool,
}

pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    size: usize,
    capacity: usize,
}

impl Pool {
    /// A pool of `size` threads (started on first use) taking at most
    /// `capacity` waiting jobs; answers wake the loop through `waker`.
    pub fn new(size: usize, capacity: usize, waker: Arc<mio::Waker>) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    running: 0,
                    stop: false,
                }),
                ready: Condvar::new(),
                answers: Mutex::new(Vec::new()),
                waker,
            }),
            threads: Vec::new(),
            size: size.max(1),
            capacity,
        }
    }

    /// Queues a job, or hands it back when the pool is full.
    pub fn submit(&mut self, job: Job) -> Result<(), Box<Job>> {
        {
            let Ok(mut q) = self.shared.queue.lock() else {
                return Err(Box::new(job));
            };
            // Jobs nobody waits for do not hold places in the queue.
            q.jobs.retain(|j| !j.cancelled.load(Ordering::Relaxed));
            if q.running + q.jobs.len() >= self.size + self.capacity {
                return Err(Box::new(job));
            }
            q.jobs.push_back(job);
        }
        if self.threads.len() < self.size {
            self.spawn();
        }
        self.shared.ready.notify_one();
        Ok(())
    }

    fn spawn(&mut self) {
        let shared = Arc::clone(&self.shared);
        let name = format!("Thread-{}", self.threads.len() + 1);
        if let Ok(t) = std::thread::Builder::new()
            .name(name)
            .spawn(move || work(&shared))
        {
            self.threads.push(t);
        }
    }

    /// The answers that have come since the last call.
    pub fn take_answers(&self) -> Vec<Answer> {
        self.shared
            .answers
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    /// No job waiting or running.
    pub fn is_idle(&self) -> bool {
        self.shared
            .queue
            .lock()
            .is_ok_and(|q| q.jobs.is_empty() && q.running == 0)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stop = true;
            q.jobs.clear();
        }
        self.shared.ready.notify_all();
        // Jobs may block for as long as they like: the threads are not
        // joined (they end when their job does).
    }
}

fn work(shared: &Shared) {
    loop {
        let job = {
            let Ok(mut q) = shared.queue.lock() else {
                return;
            };
            loop {
                if q.stop {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    if job.cancelled.load(Ordering::Relaxed) {
                        // Its client left, or got its 504: run it for
                        // nobody and the next job waits for nothing.
                        continue;
                    }
                    q.running += 1;
                    break job;
                }
                q = match shared.ready.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let answer = run(job);
        if let Ok(mut q) = shared.queue.lock() {
            q.running -= 1;
        }
        if let Ok(mut a) = shared.answers.lock() {
            a.push(answer);
        }
        let _ = shared.waker.wake();
    }
}

/// Runs one job: an exchange over owned buffers, the job's work, and the
/// answer it wrote. A job that panics answers 500.
fn run(job: Job) -> Answer {
    let Job {
        key,
        generation,
        head,
        cancelled: _,
        body,
        keep_alive,
        work,
        config,
        date,
        now,
    } = job;
    let mut bytes = Vec::new();
    let mut held = Vec::new();
    let outcome = head.with_req(|req| {
        let mut ex = Exchange::new(
            req, &mut bytes, &mut held, &config, &date, now, keep_alive, None, body,
        );
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut ex)));
        if run.is_err() {
            ex.send_error(500, Some("The handler panicked"), None);
        }
        ex.finish()
    });
    let Some(Outcome {
        status,
        close,
        error,
        next,
        chunked,
        bodyless,
        stream_length,
    }) = outcome
    else {
        return Answer {
            key,
            generation,
            bytes: Vec::new(),
            status: 500,
            close: true,
            error: Some("Unreadable request".into()),
            chunked: false,
            bodyless: false,
            stream_length: None,
            next: WorkerNext::Nothing,
        };
    };
    let next = match next {
        Next::Nothing => WorkerNext::Nothing,
        Next::OwnedFile { file, offset, len } => WorkerNext::File { file, offset, len },
        Next::Stream(s) => WorkerNext::Stream(s),
        Next::Cgi(c) => WorkerNext::Cgi(c),
        // What only the loop can do does not happen here (read_body,
        // defer and poll run at once on a worker; files are owned).
        _ => WorkerNext::Nothing,
    };
    Answer {
        key,
        generation,
        bytes,
        status,
        close,
        error,
        chunked,
        bodyless,
        stream_length,
        next,
    }
}
