//! Ordered `;name=value` parameter lists.

use std::fmt;

/// An ordered list of `(name, value)` parameters with case-insensitive name lookup.
/// A parameter without `=` has value `None` (e.g. `;lr`, `;rport`). Quoted values
/// are stored with their quotes, so they serialise as received.
///
/// Stored as one string plus spans, the first few inline (one allocation for
/// typical lists), since typed headers are built on every access.
#[derive(Clone, Default)]
pub struct Params {
    buf: String,
    items: Items,
}

#[derive(Debug, Clone, Copy, Default)]
struct Item {
    name: (u32, u32),
    /// `None` for a parameter without `=`.
    value: Option<(u32, u32)>,
}

const INLINE: usize = 3;

/// A small vector of spans: the first [`INLINE`] in place, the rest on the heap.
#[derive(Debug, Clone, Default)]
struct Items {
    inline: [Item; INLINE],
    n: usize,
    spill: Vec<Item>,
}

impl Items {
    fn len(&self) -> usize {
        self.n
    }

    fn push(&mut self, it: Item) {
        match self.inline.get_mut(self.n) {
            Some(slot) => *slot = it,
            None => self.spill.push(it),
        }
        self.n += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &Item> + '_ {
        self.inline[..self.n.min(INLINE)]
            .iter()
            .chain(self.spill.iter())
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Item> {
        if i < INLINE {
            self.inline[..self.n.min(INLINE)].get_mut(i)
        } else {
            self.spill.get_mut(i - INLINE)
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Item) -> bool) {
        let kept: Vec<Item> = self.iter().copied().filter(|it| keep(it)).collect();
        *self = Items::default();
        for it in kept {
            self.push(it);
        }
    }
}

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Params::default()
    }

    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Params {
            buf: String::with_capacity(bytes),
            items: Items::default(),
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
        let i = self.find(name)?;
        let it = self.items.iter().nth(i)?;
        Some(it.value.map(|v| self.text(v)))
    }

    /// True if the parameter is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets (replacing the first of that name in place) or appends a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(|v| self.store(v));
        match self.find(name) {
            Some(i) => {
                if let Some(it) = self.items.get_mut(i) {
                    it.value = value;
                }
            }
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
        self.items.len() == 0
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
