//! The one writer: a thread that owns the write connection and commits whatever requests are
//! waiting in one transaction (group commit), answering each only after the commit is on disk.
//!
//! Why a thread: SQLite allows one writer at a time anyway, and `synchronous=FULL` makes every
//! commit an fsync. Committing the requests that queued up during the previous fsync together
//! turns N fsyncs into one while each caller still gets its answer only once its write is
//! durable. Each request runs in its own savepoint, so one refused request (an invalid
//! transition) does not undo the others.
//!
//! Every request carries the organisation of the store handle that sent it, and each write
//! is made for that organisation only: the thread itself belongs to none.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use sms_core::Org;
use sms_core::journal::{Campaign, CampaignId, DeliveryUpdate, JournalError, Transition};
use sms_core::optout::OptOutChange;
use tokio::sync::oneshot;

use crate::{journal, optout, replies};
use sms_core::StoredReply;

/// Requests committed in one transaction at most.
const MAX_BATCH: usize = 1024;

/// A write.
pub(crate) enum Op {
    CreateCampaign(Box<Campaign>),
    Apply(CampaignId, Vec<Transition>),
    Delivery(DeliveryUpdate),
    OptOut(OptOutChange),
    Reply(Box<StoredReply>),
    /// Writes nothing: proves the writer thread runs and can take the write lock (a health
    /// check). A transaction without changes commits without an fsync.
    Check,
    /// An alert store write: runs once, in its own savepoint, and leaves its answer itself.
    Alerts(AlertWrite),
}

/// The body of an alert store write, given the connection and the request's organisation.
pub(crate) type AlertWrite = Box<dyn FnMut(&Connection, &str) -> Result<(), JournalError> + Send>;

/// What a write answers.
pub(crate) type Reply = Result<bool, JournalError>;

struct Request {
    org: Org,
    op: Op,
    reply: oneshot::Sender<Reply>,
}

/// The handle callers write through.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread over `conn`.
    pub(crate) fn start(conn: Connection) -> std::io::Result<Writer> {
        let (sender, receiver) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("sms-sqlite-writer".to_owned())
            .spawn(move || run(conn, receiver))?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Writes `op` for `org` and waits until it is committed (or refused).
    pub(crate) async fn write(&self, org: &Org, op: Op) -> Reply {
        let stopped = || JournalError::Unavailable("the SQLite writer has stopped".to_owned());
        let (reply, answer) = oneshot::channel();
        self.sender
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request {
                org: org.clone(),
                op,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after it commits what it holds; joining makes sure
        // the file is closed when the store is gone.
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: Connection, receiver: mpsc::Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let replies = commit(&mut conn, &mut batch);
        for (request, reply) in batch.into_iter().zip(replies) {
            // A caller that stopped waiting (its future was dropped) still had its write done.
            let _ = request.reply.send(reply);
        }
    }
}

fn unavailable(error: rusqlite::Error) -> JournalError {
    JournalError::Unavailable(error.to_string())
}

fn commit(conn: &mut Connection, batch: &mut [Request]) -> Vec<Reply> {
    let requests = batch.len();
    let failed = |error: rusqlite::Error| {
        let error = unavailable(error);
        (0..requests).map(|_| Err(error.clone())).collect()
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return failed(error),
    };
    let mut replies = Vec::with_capacity(batch.len());
    for request in batch.iter_mut() {
        replies.push(one(&mut tx, request.org.as_str(), &mut request.op));
    }
    match tx.commit() {
        Ok(()) => replies,
        Err(error) => failed(error),
    }
}

fn one(tx: &mut Transaction<'_>, org: &str, op: &mut Op) -> Reply {
    let savepoint = tx.savepoint().map_err(unavailable)?;
    let result = match op {
        Op::CreateCampaign(campaign) => {
            journal::insert_campaign(&savepoint, org, campaign).map(|()| true)
        }
        Op::Apply(id, transitions) => {
            journal::apply(&savepoint, org, id, transitions).map(|()| true)
        }
        Op::Delivery(update) => journal::delivery(&savepoint, org, update),
        Op::OptOut(change) => optout::insert(&savepoint, org, change).map(|()| true),
        Op::Reply(reply) => replies::insert(&savepoint, org, reply),
        Op::Check => Ok(true),
        Op::Alerts(write) => write(&savepoint, org).map(|()| true),
    };
    match result {
        Ok(value) => {
            savepoint.commit().map_err(unavailable)?;
            Ok(value)
        }
        // Dropping the savepoint rolls back this request's changes only.
        Err(error) => Err(error),
    }
}
