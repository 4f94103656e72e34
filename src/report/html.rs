//! The page's HTML: a minijinja template (`page.html`, inline CSS) rendered with HTML
//! auto-escaping, so every name and scenario text is escaped; only the plotters SVGs,
//! which plotters escapes itself, are inserted as markup.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::view::Page;
use super::ReportError;

const TEMPLATE_NAME: &str = "page.html";
const TEMPLATE: &str = include_str!("page.html");

/// Renders `page` through the page template.
pub(super) fn render(page: &Page) -> Result<String, ReportError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(TEMPLATE_NAME, TEMPLATE).map_err(template_error)?;
    let template = env.get_template(TEMPLATE_NAME).map_err(template_error)?;
    template.render(page).map_err(template_error)
}

fn template_error(error: minijinja::Error) -> ReportError {
    ReportError::Template(format!("{error:#}"))
}
