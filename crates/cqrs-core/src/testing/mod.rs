//! Given/when/then harnesses for aggregates and projections.
//!
//! Both check more than the outcome: events are round-tripped through their stored
//! form, so a type name that does not match its serde variant, or a payload that does
//! not deserialize, fails the test that produced it.

mod aggregate;
mod projection;

pub use aggregate::{AggregateTest, AggregateThen};
pub use projection::ProjectionTest;
