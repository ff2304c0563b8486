//! A prompt as words, each taken at most once: every phrase the parser reads takes its
//! words, and what is left names the metric.

use std::ops::Range;

pub struct Words {
    original: Vec<String>,
    lower: Vec<String>,
    taken: Vec<bool>,
}

impl Words {
    /// Splits on white space and commas; trims quotes, brackets and end punctuation, keeps
    /// what names carry (`.`, `_`, `-`, `:`, `/`, `=`).
    pub fn new(prompt: &str) -> Words {
        let original: Vec<String> = prompt
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .map(|w| {
                w.trim_matches(|c: char| "\"'`()[]{}?!".contains(c))
                    .trim_end_matches(['.', ':'])
                    .to_owned()
            })
            .filter(|w| !w.is_empty())
            .collect();
        let lower = original.iter().map(|w| w.to_lowercase()).collect();
        let taken = vec![false; original.len()];
        Words {
            original,
            lower,
            taken,
        }
    }

    pub fn len(&self) -> usize {
        self.original.len()
    }

    pub fn is_empty(&self) -> bool {
        self.original.is_empty()
    }

    pub fn is_free(&self, i: usize) -> bool {
        i < self.len() && !self.taken[i]
    }

    pub fn lower(&self, i: usize) -> &str {
        &self.lower[i]
    }

    /// The lower-case word at `i` if it is free, else `""`.
    pub fn lower_at(&self, i: usize) -> String {
        match self.is_free(i) {
            true => self.lower[i].clone(),
            false => String::new(),
        }
    }

    /// The word at `i` as written, if it is free.
    pub fn original(&self, i: usize) -> Option<&str> {
        self.is_free(i).then(|| self.original[i].as_str())
    }

    pub fn take(&mut self, range: Range<usize>) {
        for i in range {
            if i < self.taken.len() {
                self.taken[i] = true;
            }
        }
    }

    /// The free words, in order, with their positions.
    pub fn free(&self) -> Vec<(usize, &str)> {
        (0..self.len())
            .filter(|&i| !self.taken[i])
            .map(|i| (i, self.lower[i].as_str()))
            .collect()
    }
}
