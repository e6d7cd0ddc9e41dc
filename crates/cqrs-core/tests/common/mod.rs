//! A small bank-account domain shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cqrs_core::{
    Aggregate, Command, DocumentChange, Envelope, Error, Event, MemoryReadModelStore, Position,
    Projection, RawEvent, ReadModelReader, ReadModelWriter, StoredDocument,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(upcast = upcast_account)]
pub enum AccountEvent {
    Opened {
        owner: String,
    },
    /// Schema v2. v1 stored `{ "cents": n }` with no currency.
    #[event(version = 2)]
    Deposited {
        amount: u64,
        currency: String,
    },
    Withdrawn {
        amount: u64,
    },
}

fn upcast_account(mut raw: RawEvent) -> Result<RawEvent, Error> {
    if raw.event_type == "account.Deposited" && raw.schema_version == 1 {
        let cents = raw.payload["cents"]
            .as_u64()
            .ok_or_else(|| Error::codec("account.Deposited", "v1 payload without `cents`"))?;
        raw.payload = json!({ "amount": cents, "currency": "EUR" });
        raw.schema_version = 2;
    }
    Ok(raw)
}

#[derive(Debug, Clone)]
pub enum AccountCommand {
    Open {
        id: String,
        owner: String,
    },
    Deposit {
        id: String,
        amount: u64,
        command_id: Option<Uuid>,
    },
    Withdraw {
        id: String,
        amount: u64,
    },
}

impl Command for AccountCommand {
    fn aggregate_id(&self) -> String {
        match self {
            Self::Open { id, .. } | Self::Deposit { id, .. } | Self::Withdraw { id, .. } => {
                id.clone()
            }
        }
    }

    fn command_id(&self) -> Option<Uuid> {
        match self {
            Self::Deposit { command_id, .. } => *command_id,
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("account already open")]
    AlreadyOpen,
    #[error("account not open")]
    NotOpen,
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds { balance: u64, asked: u64 },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub owner: Option<String>,
    pub balance: u64,
    pub events_applied: u64,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if self.owner.is_some() => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner, .. } => Ok(vec![AccountEvent::Opened {
                owner: owner.clone(),
            }]),
            _ if self.owner.is_none() => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount, .. } => Ok(vec![AccountEvent::Deposited {
                amount: *amount,
                currency: "EUR".into(),
            }]),
            AccountCommand::Withdraw { amount, .. } if *amount > self.balance => {
                Err(AccountError::InsufficientFunds {
                    balance: self.balance,
                    asked: *amount,
                })
            }
            AccountCommand::Withdraw { amount, .. } => {
                Ok(vec![AccountEvent::Withdrawn { amount: *amount }])
            }
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        self.events_applied += 1;
        match event {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

/// One document per account (its balance and how many events were applied to it),
/// and one `totals` document counting every event: a counter that would be wrong if
/// any event were applied twice or skipped.
pub struct Balances;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceDoc {
    pub balance: u64,
    pub events: u64,
}

impl Projection for Balances {
    const NAME: &'static str = "balances";
    type Event = AccountEvent;
    type Document = BalanceDoc;

    fn document_ids(&self, event: &Envelope<AccountEvent>) -> Vec<String> {
        vec![event.stream_id.to_string(), "totals".to_owned()]
    }

    fn apply(&self, id: &str, doc: &mut Option<BalanceDoc>, event: &Envelope<AccountEvent>) {
        let doc = doc.get_or_insert_with(BalanceDoc::default);
        doc.events += 1;
        match &event.event {
            AccountEvent::Opened { .. } => {}
            AccountEvent::Deposited { amount, .. } => doc.balance += amount,
            AccountEvent::Withdrawn { amount } => doc.balance -= amount,
        }
        let _ = id;
    }
}

pub fn open(id: &str) -> AccountCommand {
    AccountCommand::Open {
        id: id.into(),
        owner: format!("owner of {id}"),
    }
}

pub fn deposit(id: &str, amount: u64) -> AccountCommand {
    AccountCommand::Deposit {
        id: id.into(),
        amount,
        command_id: None,
    }
}

/// An in-memory read-model store that fails on demand. It commits as a store without
/// transactions does: documents first, then the checkpoint, as two steps.
/// `crash_before_checkpoint` makes the next commit fail between the two;
/// `failing_commits` makes that many commits fail before writing anything;
/// `refused_document` makes every commit that changes that document fail; `down`
/// makes every call fail, as a server that does not answer.
#[derive(Clone, Default)]
pub struct FaultyStore {
    pub inner: MemoryReadModelStore,
    pub crash_before_checkpoint: Arc<AtomicBool>,
    pub failing_commits: Arc<AtomicU32>,
    pub refused_document: Arc<std::sync::Mutex<Option<String>>>,
    pub down: Arc<AtomicBool>,
}

impl FaultyStore {
    fn answer(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::backend("connect", "connection refused"));
        }
        Ok(())
    }
}

impl ReadModelReader for FaultyStore {
    async fn get(&self, p: &str, id: &str) -> Result<Option<StoredDocument>, Error> {
        self.answer()?;
        self.inner.get(p, id).await
    }
    async fn get_many(
        &self,
        p: &str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, Error> {
        self.answer()?;
        self.inner.get_many(p, ids).await
    }
}

impl ReadModelWriter for FaultyStore {
    async fn checkpoint(&self, p: &str) -> Result<Position, Error> {
        self.answer()?;
        self.inner.checkpoint(p).await
    }
    async fn commit(
        &self,
        p: &str,
        changes: Vec<DocumentChange>,
        checkpoint: Position,
    ) -> Result<(), Error> {
        let refused = self
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(Error::backend("commit", "the server went away"));
        }
        self.answer()?;
        let refused = self
            .refused_document
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(refused) = refused {
            if changes.iter().any(|c| c.id() == refused) {
                return Err(Error::backend("commit", "document too large"));
            }
        }
        let current = self.inner.checkpoint(p).await?;
        self.inner.commit(p, changes, current).await?;
        if self.crash_before_checkpoint.swap(false, Ordering::SeqCst) {
            return Err(Error::backend(
                "commit",
                "connection lost before the checkpoint",
            ));
        }
        self.inner.commit(p, Vec::new(), checkpoint).await
    }
    async fn reset(&self, p: &str) -> Result<(), Error> {
        self.answer()?;
        self.inner.reset(p).await
    }
    async fn alias(&self, alias: &str) -> Result<Option<String>, Error> {
        self.inner.alias(alias).await
    }
    async fn set_alias(&self, alias: &str, target: &str) -> Result<(), Error> {
        self.inner.set_alias(alias, target).await
    }
}
