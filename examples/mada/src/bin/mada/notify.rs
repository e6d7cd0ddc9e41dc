//! `mada notify`: the notifier role.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{EventStore, EventSubscriber, ReadModelStore};
use mada::notify::clock::{Clock, FileClock, SystemClock};
use mada::notify::fcm::Fcm;
use mada::notify::{Notifier, NotifierOptions};

use crate::stores::{OnStores, Stores, on_stores};
use crate::{Cli, StoreKind};

/// Runs the notifier until SIGINT or SIGTERM.
pub(crate) async fn run(cli: &Cli) -> Result<String, String> {
    if cli.store != StoreKind::Postgres {
        return Err("mada notify needs --store postgres: it keeps what it sent there".into());
    }
    let key = match (&cli.fcm_credentials_json, &cli.fcm_credentials) {
        (Some(json), _) => yup_oauth2::parse_service_account_key(json)
            .map_err(|e| format!("MADA_FCM_CREDENTIALS_JSON: {e}"))?,
        (None, Some(path)) => yup_oauth2::read_service_account_key(path)
            .await
            .map_err(|e| format!("--fcm-credentials {}: {e}", path.display()))?,
        (None, None) => {
            return Err("give the service account: --fcm-credentials FILE \
                        (GOOGLE_APPLICATION_CREDENTIALS) or MADA_FCM_CREDENTIALS_JSON"
                .into());
        }
    };
    let fcm = Fcm::new(
        key,
        &cli.fcm_endpoint,
        cli.fcm_project.as_deref(),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    on_stores(cli, false, Notify { cli, fcm }).await
}

struct Notify<'a> {
    cli: &'a Cli,
    fcm: Fcm,
}

impl OnStores for Notify<'_> {
    async fn run<S, P, K>(self, stores: Stores<'_, S, P, K>) -> Result<String, String>
    where
        S: EventStore + EventSubscriber + Clone + Send + Sync + 'static,
        P: ReadModelStore + Clone + Send + Sync + 'static,
        K: ReadModelStore + Clone + Send + Sync + 'static,
    {
        let cli = self.cli;
        let pool = stores
            .db
            .pg()
            .ok_or("mada notify needs --store postgres")?
            .clone();
        let clock: Arc<dyn Clock> = match &cli.clock_file {
            Some(path) => Arc::new(FileClock::new(path)),
            None => Arc::new(SystemClock),
        };
        let options = NotifierOptions {
            tick: Duration::from_millis(cli.notify_tick_ms.max(10)),
            stale: chrono::Duration::minutes(cli.reminder_stale_mins.max(0)),
            claim: chrono::Duration::seconds(cli.notify_claim_secs.max(1)),
            ..NotifierOptions::default()
        };
        let notifier = Notifier::new(pool, stores.read.plans, self.fcm, clock, options)
            .await
            .map_err(|e| e.to_string())?;
        println!("MADA notifier running ({})", stores.label);
        tokio::select! {
            run = notifier.run(crate::serve::shutdown_signal()) => run.map_err(|e| e.to_string())?,
            served = crate::health::serve(cli) => return served,
        }
        Ok("stopped\n".to_owned())
    }
}
