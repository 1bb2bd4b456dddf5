//! Ordered `;name=value` parameter lists.

use std::fmt;

/// An ordered list of `(name, value)` parameters with case-insensitive name lookup.
/// A parameter without `=` has value `None` (e.g. `;lr`, `;rport`). Quoted values
/// are stored with their quotes, so they serialise as received.
///
/// Stored as one string plus spans (two allocations however many parameters),
/// since typed headers are built on every access.
#[derive(Clone, Default)]
pub struct Params {
    buf: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    name: (u32, u32),
    /// `None` for a parameter without `=`.
    value: Option<(u32, u32)>,
}

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Params::default()
    }

    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Params {
            buf: String::with_capacity(bytes),
            items: Vec::with_capacity(4),
        }
    }

    fn text(&self, span: (u32, u32)) -> &str {
        self.buf.get(span.0 as usize..span.1 as usize).unwrap_or("")
    }

    fn store(&mut self, s: &str) -> (u32, u32) {
        let start = self.buf.len() as u32;
        self.buf.push_str(s);
        (start, self.buf.len() as u32)
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.items
            .iter()
            .position(|it| self.text(it.name).eq_ignore_ascii_case(name))
    }

    /// `None` if absent, `Some(None)` if present without a value, `Some(Some(v))` else.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.find(name)
            .map(|i| self.items[i].value.map(|v| self.text(v)))
    }

    /// True if the parameter is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets (replacing the first of that name in place) or appends a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(|v| self.store(v));
        match self.find(name) {
            Some(i) => self.items[i].value = value,
            None => {
                let name = self.store(name);
                self.items.push(Item { name, value });
            }
        }
    }

    /// Appends a parameter without looking for an existing one.
    pub fn push(&mut self, name: &str, value: Option<&str>) {
        let name = self.store(name);
        let value = value.map(|v| self.store(v));
        self.items.push(Item { name, value });
    }

    /// Removes every parameter of that name; returns whether any was removed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.items.len();
        let buf = &self.buf;
        self.items.retain(|it| {
            !buf.get(it.name.0 as usize..it.name.1 as usize)
                .unwrap_or("")
                .eq_ignore_ascii_case(name)
        });
        before != self.items.len()
    }

    /// Parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.items
            .iter()
            .map(|it| (self.text(it.name), it.value.map(|v| self.text(v))))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Same parameters (names compared exactly) in the same order.
impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Writes `;name=value` for each parameter.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in self.iter() {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}
