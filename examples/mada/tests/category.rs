//! The category aggregate's rules, given/when/then.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use cqrs_core::testing::AggregateTest;
use mada::domain::{
    Category, CategoryAction, CategoryCommand, CategoryError, CategoryEvent, Colour,
};
use uuid::Uuid;

fn id() -> Uuid {
    Uuid::from_u128(7)
}

fn colour(text: &str) -> Colour {
    text.parse().unwrap()
}

fn created() -> CategoryEvent {
    CategoryEvent::CategoryCreated {
        category_id: id(),
        user_id: "ada".into(),
        name: "Health".into(),
        colour: colour("#00FF00"),
    }
}

#[test]
fn colours_are_normalised_and_checked() {
    assert_eq!(colour("#00FF00").as_str(), "#00ff00");
    assert_eq!(colour("a1b2c3").as_str(), "#a1b2c3");
    assert_eq!(
        "blue".parse::<Colour>(),
        Err(CategoryError::InvalidColour("blue".into()))
    );
    assert!(
        serde_json::from_str::<Colour>("\"#12345\"").is_err(),
        "a stored colour is checked too"
    );
}

#[test]
fn a_category_is_created_once() {
    let create = CategoryCommand::new(
        "ada",
        id(),
        CategoryAction::Create {
            name: " Health ".into(),
            colour: colour("#00ff00"),
        },
    );
    AggregateTest::<Category>::given_no_events()
        .when(create.clone())
        .then_expect_events([created()]);
    AggregateTest::<Category>::given([created()])
        .when(create)
        .then_expect_error(CategoryError::AlreadyExists);
}

#[test]
fn names_must_be_present_and_short() {
    let rename = |name: &str| {
        CategoryCommand::new("ada", id(), CategoryAction::Rename { name: name.into() })
    };
    AggregateTest::<Category>::given([created()])
        .when(rename(""))
        .then_expect_error(CategoryError::EmptyName);
    AggregateTest::<Category>::given([created()])
        .when(rename(&"n".repeat(41)))
        .then_expect_error(CategoryError::NameTooLong(41));
    AggregateTest::<Category>::given([created()])
        .when(rename("Health"))
        .then_expect_events([]);
    AggregateTest::<Category>::given([created()])
        .when(rename("Body"))
        .then_expect_events([CategoryEvent::CategoryRenamed {
            category_id: id(),
            user_id: "ada".into(),
            name: "Body".into(),
        }]);
}

#[test]
fn a_deleted_or_foreign_category_cannot_change() {
    let deleted = CategoryEvent::CategoryDeleted {
        category_id: id(),
        user_id: "ada".into(),
    };
    AggregateTest::<Category>::given([created(), deleted])
        .when(CategoryCommand::new(
            "ada",
            id(),
            CategoryAction::Recolour {
                colour: colour("#000000"),
            },
        ))
        .then_expect_error(CategoryError::Deleted);
    AggregateTest::<Category>::given([created()])
        .when(CategoryCommand::new(
            "mallory",
            id(),
            CategoryAction::Delete,
        ))
        .then_expect_error(CategoryError::NotFound);
}
