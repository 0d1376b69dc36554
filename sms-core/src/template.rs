//! Templates: a message with merge fields (`{first_name}`, `{course_title}`) rendered per record.
//!
//! `{{` and `}}` stand for literal braces. A field the template names but the recipients do not
//! have is an error when the preview is made, never a blank in a sent text.

use serde::{Deserialize, Serialize};

/// A message template, parsed once and rendered per record.
///
/// ```
/// use sms_core::Template;
/// let t = Template::parse("Hi {first_name}, {course_title} starts Monday.").unwrap();
/// let body = t.render(|f| match f {
///     "first_name" => Some("Ana"),
///     "course_title" => Some("Welding I"),
///     _ => None,
/// }).unwrap();
/// assert_eq!(body, "Hi Ana, Welding I starts Monday.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
}

/// What is wrong with a template or its use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum TemplateError {
    /// A `{` without its `}` (write `{{` for a literal brace).
    #[error(
        "unclosed merge field starting at character {position} (write {{{{ for a literal brace)"
    )]
    Unclosed {
        /// Character offset of the `{`.
        position: usize,
    },
    /// A `}` without its `{` (write `}}` for a literal brace).
    #[error("unmatched }} at character {position} (write }}}} for a literal brace)")]
    Unmatched {
        /// Character offset of the `}`.
        position: usize,
    },
    /// `{}` or a name with characters other than letters, digits and `_`.
    #[error("bad merge field name {name:?} at character {position}")]
    BadName {
        /// The text between the braces.
        name: String,
        /// Character offset of the `{`.
        position: usize,
    },
    /// A field the recipients do not have.
    #[error("unknown merge field {{{name}}}; known fields: {known}")]
    UnknownField {
        /// The field's name.
        name: String,
        /// The fields that exist, comma-separated.
        known: String,
    },
    /// A record has no value for a field.
    #[error("no value for merge field {{{name}}}")]
    MissingValue {
        /// The field's name.
        name: String,
    },
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().enumerate().peekable();
        while let Some((position, (_, c))) = chars.next() {
            match c {
                '{' if matches!(chars.peek(), Some((_, (_, '{')))) => {
                    chars.next();
                    literal.push('{');
                }
                '}' if matches!(chars.peek(), Some((_, (_, '}')))) => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::Unmatched { position }),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, (_, c)) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed { position });
                    }
                    let trimmed = name.trim();
                    if trimmed.is_empty()
                        || !trimmed.chars().all(|c| c.is_alphanumeric() || c == '_')
                    {
                        return Err(TemplateError::BadName { name, position });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(trimmed.to_owned()));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The merge fields used, in order of first use, without duplicates.
    pub fn fields(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Field(name) = part
                && !names.contains(&name.as_str())
            {
                names.push(name);
            }
        }
        names
    }

    /// Whether the template has no merge field (every record gets the same text).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Checks that every field the template uses is among `known`.
    pub fn check_fields<S: AsRef<str>>(&self, known: &[S]) -> Result<(), TemplateError> {
        for name in self.fields() {
            if !known.iter().any(|k| k.as_ref() == name) {
                let known = known
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(TemplateError::UnknownField {
                    name: name.to_owned(),
                    known,
                });
            }
        }
        Ok(())
    }

    /// Renders with `lookup` giving each field's value. A field with no value or a blank value
    /// is [`TemplateError::MissingValue`]: a text never goes out with a hole in it.
    pub fn render<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len() + 32);
        self.render_into(lookup, &mut out)?;
        Ok(out)
    }

    /// Like [`Template::render`], appending to `out` (cleared first) to reuse its allocation.
    pub fn render_into<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name) => match lookup(name).map(str::trim) {
                    Some(value) if !value.is_empty() => out.push_str(value),
                    _ => return Err(TemplateError::MissingValue { name: name.clone() }),
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_and_errors() {
        let t = Template::parse("{{literal}} {a}").expect("valid");
        assert_eq!(t.fields(), vec!["a"]);
        assert_eq!(t.render(|_| Some("x")).expect("renders"), "{literal} x");
        assert_eq!(
            Template::parse("Hi {first_name"),
            Err(TemplateError::Unclosed { position: 3 })
        );
        assert_eq!(
            Template::parse("50% off}"),
            Err(TemplateError::Unmatched { position: 7 })
        );
        assert!(matches!(
            Template::parse("{}"),
            Err(TemplateError::BadName { .. })
        ));
        let t = Template::parse("{course}").expect("valid");
        assert!(matches!(
            t.check_fields(&["first_name"]),
            Err(TemplateError::UnknownField { .. })
        ));
        assert_eq!(
            t.render(|_| Some("  ")),
            Err(TemplateError::MissingValue {
                name: "course".into()
            })
        );
    }

    proptest! {
        #[test]
        fn parsing_and_rendering_never_panic(source in "\\PC*", value in "\\PC*") {
            if let Ok(t) = Template::parse(&source) {
                let _ = t.render(|_| Some(value.as_str()));
            }
        }

        #[test]
        fn text_without_braces_renders_as_itself(source in "[^{}]*") {
            let t = Template::parse(&source).expect("no braces, always valid");
            prop_assert!(t.is_constant());
            prop_assert_eq!(t.render(|_| None).expect("no fields"), source);
        }
    }
}
