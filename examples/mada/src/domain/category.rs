//! A category groups goals under a name and a colour.

use std::fmt;
use std::str::FromStr;

use cqrs_core::{Aggregate, Command, Event};
use serde::{Deserialize, Serialize};

use super::{CategoryId, UserId};

/// The longest category name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// A colour as `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Colour(String);

impl Colour {
    /// The colour as `#rrggbb`, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Colour {
    type Err = CategoryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text.strip_prefix('#').unwrap_or(text);
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(format!("#{}", hex.to_ascii_lowercase())))
        } else {
            Err(CategoryError::InvalidColour(text.to_owned()))
        }
    }
}

impl TryFrom<String> for Colour {
    type Error = CategoryError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Colour> for String {
    fn from(value: Colour) -> Self {
        value.0
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request about one category, made by one user.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryCommand {
    /// The category.
    pub category_id: CategoryId,
    /// Who asks: its owner, for every action but `Create` (which makes them the
    /// owner). Another user's category is reported as missing.
    pub user_id: UserId,
    /// What to do.
    pub action: CategoryAction,
}

impl CategoryCommand {
    /// `user_id` asks for `action` on category `category_id`.
    pub fn new(
        user_id: impl Into<UserId>,
        category_id: CategoryId,
        action: CategoryAction,
    ) -> Self {
        Self {
            category_id,
            user_id: user_id.into(),
            action,
        }
    }
}

/// What a user can do to a category.
#[derive(Debug, Clone, PartialEq)]
pub enum CategoryAction {
    /// Creates it.
    Create {
        /// Its name (trimmed; 1 to [`MAX_NAME_CHARS`] characters).
        name: String,
        /// Its colour.
        colour: Colour,
    },
    /// Renames it.
    Rename {
        /// The new name.
        name: String,
    },
    /// Changes its colour.
    Recolour {
        /// The new colour.
        colour: Colour,
    },
    /// Deletes it. Its goals keep their history; new goals cannot use it.
    Delete,
}

impl Command for CategoryCommand {
    fn aggregate_id(&self) -> String {
        self.category_id.to_string()
    }
}

/// What happened to a category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum CategoryEvent {
    /// A category was created.
    CategoryCreated {
        /// The category.
        category_id: CategoryId,
        /// Its owner.
        user_id: UserId,
        /// Its name.
        name: String,
        /// Its colour.
        colour: Colour,
    },
    /// A category was renamed.
    CategoryRenamed {
        /// The category.
        category_id: CategoryId,
        /// Its owner.
        user_id: UserId,
        /// The new name.
        name: String,
    },
    /// A category's colour changed.
    CategoryRecoloured {
        /// The category.
        category_id: CategoryId,
        /// Its owner.
        user_id: UserId,
        /// The new colour.
        colour: Colour,
    },
    /// A category was deleted.
    CategoryDeleted {
        /// The category.
        category_id: CategoryId,
        /// Its owner.
        user_id: UserId,
    },
}

/// Why a category command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CategoryError {
    /// The name is empty once trimmed.
    #[error("a category needs a name")]
    EmptyName,
    /// The name is too long.
    #[error("a category name has at most {MAX_NAME_CHARS} characters, this one has {0}")]
    NameTooLong(usize),
    /// The colour is not `#rrggbb`.
    #[error("`{0}` is not a colour; use #rrggbb")]
    InvalidColour(String),
    /// The category exists already.
    #[error("this category exists already")]
    AlreadyExists,
    /// No such category for this user.
    #[error("no such category")]
    NotFound,
    /// The category was deleted.
    #[error("this category was deleted")]
    Deleted,
}

/// A category's state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// Its owner, once created.
    pub owner: Option<UserId>,
    /// Its name.
    pub name: String,
    /// Its colour.
    pub colour: Option<Colour>,
    /// Whether it was deleted.
    pub deleted: bool,
}

fn valid_name(name: &str) -> Result<String, CategoryError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        Err(CategoryError::EmptyName)
    } else if chars > MAX_NAME_CHARS {
        Err(CategoryError::NameTooLong(chars))
    } else {
        Ok(name.to_owned())
    }
}

impl Aggregate for Category {
    const TYPE: &'static str = "category";
    type Command = CategoryCommand;
    type Event = CategoryEvent;
    type Error = CategoryError;

    fn handle(&self, command: &CategoryCommand) -> Result<Vec<CategoryEvent>, CategoryError> {
        let CategoryCommand {
            category_id,
            user_id,
            action,
        } = command;
        let (category_id, user_id) = (*category_id, user_id.clone());
        if let CategoryAction::Create { name, colour } = action {
            if self.owner.is_some() {
                return Err(CategoryError::AlreadyExists);
            }
            return Ok(vec![CategoryEvent::CategoryCreated {
                category_id,
                user_id,
                name: valid_name(name)?,
                colour: colour.clone(),
            }]);
        }
        // Another user's category is reported as missing: ids are not secrets, but
        // nothing of another user's data should show through.
        if self.owner.as_deref() != Some(user_id.as_str()) {
            return Err(CategoryError::NotFound);
        }
        if self.deleted {
            return Err(CategoryError::Deleted);
        }
        Ok(match action {
            CategoryAction::Create { .. } => Vec::new(),
            CategoryAction::Rename { name } => {
                let name = valid_name(name)?;
                if name == self.name {
                    Vec::new()
                } else {
                    vec![CategoryEvent::CategoryRenamed {
                        category_id,
                        user_id,
                        name,
                    }]
                }
            }
            CategoryAction::Recolour { colour } => {
                if self.colour.as_ref() == Some(colour) {
                    Vec::new()
                } else {
                    vec![CategoryEvent::CategoryRecoloured {
                        category_id,
                        user_id,
                        colour: colour.clone(),
                    }]
                }
            }
            CategoryAction::Delete => vec![CategoryEvent::CategoryDeleted {
                category_id,
                user_id,
            }],
        })
    }

    fn apply(&mut self, event: &CategoryEvent) {
        match event {
            CategoryEvent::CategoryCreated {
                user_id,
                name,
                colour,
                ..
            } => {
                self.owner = Some(user_id.clone());
                self.name = name.clone();
                self.colour = Some(colour.clone());
            }
            CategoryEvent::CategoryRenamed { name, .. } => self.name = name.clone(),
            CategoryEvent::CategoryRecoloured { colour, .. } => self.colour = Some(colour.clone()),
            CategoryEvent::CategoryDeleted { .. } => self.deleted = true,
        }
    }
}
