//! A fake FCM with a trusted service account, and a planner on a fresh
//! PostgreSQL schema whose events the notifier reads.

use std::sync::Arc;
use std::time::Duration;

use cqrs_postgres::{PgEventStore, PgReadModelStore};
use cqrs_testkit::fcm::{FakeFcm, ServiceAccount};
use mada::notify::fcm::Fcm;
use mada::{Planner, PlannerOptions, ReadStores};
use sqlx::PgPool;

pub const PROJECT: &str = "mada-test";

/// A local FCM and a service account it trusts.
pub async fn fcm() -> (FakeFcm, ServiceAccount) {
    let server = FakeFcm::start(PROJECT).await;
    let account = ServiceAccount::generate(&server.token_uri, PROJECT);
    server.trust(&account);
    (server, account)
}

/// A client of `server` as `account`.
pub async fn client(server: &FakeFcm, account: &ServiceAccount, timeout: Duration) -> Fcm {
    let key = yup_oauth2::parse_service_account_key(&account.key_json).unwrap();
    Fcm::new(key, &server.url, None, timeout).await.unwrap()
}

/// A fresh schema with the event store's tables; dropped by [`Db::drop_schema`].
pub struct Db {
    pub schema: String,
    pub pool: PgPool,
}

impl Db {
    pub async fn new() -> Self {
        use std::str::FromStr;
        let url = cqrs_testkit::postgres_url();
        let schema = cqrs_testkit::unique_name("notify");
        let admin = PgPool::connect(&url)
            .await
            .unwrap_or_else(|e| cqrs_testkit::server_unreachable("PostgreSQL", &url, e));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let options = sqlx::postgres::PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap();
        cqrs_postgres::migrate(&pool).await.unwrap();
        Self { schema, pool }
    }

    /// The planner on this schema (its projections running here).
    pub fn planner(&self) -> Arc<Planner<PgEventStore, PgReadModelStore>> {
        let read = ReadStores::all(PgReadModelStore::new(self.pool.clone()));
        Arc::new(Planner::start(
            PgEventStore::new(self.pool.clone()),
            read,
            PlannerOptions::default(),
        ))
    }

    pub async fn drop_schema(self) {
        let admin = PgPool::connect(&cqrs_testkit::postgres_url())
            .await
            .unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&admin)
            .await
            .unwrap();
    }
}

/// 08:00.
pub const EIGHT: chrono::NaiveTime = match chrono::NaiveTime::from_hms_opt(8, 0, 0) {
    Some(t) => t,
    None => panic!("08:00"),
};

/// Gives `user` a category, a goal due every day from `from`, the devices
/// `{user}-{device}`, and a reminder at 08:00 in `time_zone`; returns the goal.
pub async fn reminded_user(
    planner: &Planner<PgEventStore, PgReadModelStore>,
    user: &str,
    time_zone: &str,
    devices: &[&str],
    from: &str,
) -> mada::domain::GoalId {
    use mada::{Command, NewGoal};
    let category = planner
        .create_category(user, "Home", "#8e24aa")
        .await
        .unwrap();
    let goal = NewGoal {
        title: "Water the plants".into(),
        memo: None,
        category_id: category,
        schedule: mada::domain::Schedule::every_day_from(from.parse().unwrap()),
    };
    let goal = planner.create_goal(user, goal).await.unwrap();
    for device in devices {
        let token = format!("{user}-{device}");
        planner
            .run(user, Command::RegisterDevice { token })
            .await
            .unwrap();
    }
    let reminder = Command::SetReminder {
        time_zone: time_zone.into(),
        at: EIGHT,
    };
    planner.run(user, reminder).await.unwrap();
    goal
}

/// A notifier over `db`, sending to `server` as `account`, on `clock`.
pub async fn notifier(
    db: &Db,
    server: &FakeFcm,
    account: &ServiceAccount,
    clock: Arc<mada::notify::clock::ManualClock>,
    options: mada::notify::NotifierOptions,
) -> mada::notify::Notifier<PgReadModelStore> {
    let store = PgReadModelStore::new(db.pool.clone());
    let fcm = client(server, account, Duration::from_secs(5)).await;
    mada::notify::Notifier::new(db.pool.clone(), store, fcm, clock, options)
        .await
        .unwrap()
}
