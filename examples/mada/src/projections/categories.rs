//! A user's categories: one small document per user.

use cqrs_core::{Envelope, Projection};
use serde::{Deserialize, Serialize};

use crate::domain::{CategoryEvent, CategoryId, UserId};

/// A user's categories, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryList {
    /// The user.
    pub user_id: UserId,
    /// The categories that are not deleted.
    pub categories: Vec<CategoryItem>,
}

impl CategoryList {
    /// The category with id `id`, if listed.
    pub fn find(&self, id: CategoryId) -> Option<&CategoryItem> {
        self.categories.iter().find(|c| c.category_id == id)
    }
}

/// One category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryItem {
    /// The category.
    pub category_id: CategoryId,
    /// Its name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub colour: String,
}

/// Builds [`CategoryList`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct CategoriesProjection;

impl Projection for CategoriesProjection {
    const NAME: &'static str = "categories";
    type Event = CategoryEvent;
    type Document = CategoryList;

    fn document_ids(&self, event: &Envelope<CategoryEvent>) -> Vec<String> {
        match &event.event {
            CategoryEvent::CategoryCreated { user_id, .. }
            | CategoryEvent::CategoryRenamed { user_id, .. }
            | CategoryEvent::CategoryRecoloured { user_id, .. }
            | CategoryEvent::CategoryDeleted { user_id, .. } => vec![user_id.clone()],
        }
    }

    fn apply(&self, id: &str, list: &mut Option<CategoryList>, event: &Envelope<CategoryEvent>) {
        let list = list.get_or_insert_with(|| CategoryList {
            user_id: id.to_owned(),
            categories: Vec::new(),
        });
        match &event.event {
            CategoryEvent::CategoryCreated {
                category_id,
                name,
                colour,
                ..
            } => {
                list.categories.retain(|c| c.category_id != *category_id);
                list.categories.push(CategoryItem {
                    category_id: *category_id,
                    name: name.clone(),
                    colour: colour.to_string(),
                });
            }
            CategoryEvent::CategoryRenamed {
                category_id, name, ..
            } => {
                if let Some(c) = list
                    .categories
                    .iter_mut()
                    .find(|c| c.category_id == *category_id)
                {
                    c.name.clone_from(name);
                }
            }
            CategoryEvent::CategoryRecoloured {
                category_id,
                colour,
                ..
            } => {
                if let Some(c) = list
                    .categories
                    .iter_mut()
                    .find(|c| c.category_id == *category_id)
                {
                    c.colour = colour.to_string();
                }
            }
            CategoryEvent::CategoryDeleted { category_id, .. } => {
                list.categories.retain(|c| c.category_id != *category_id);
            }
        }
        list.categories.sort_by_key(|c| c.name.to_lowercase());
    }
}
