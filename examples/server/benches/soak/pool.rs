//! The bounded data set every client draws from: memory keys, file paths, document ids, entity
//! names, and also document texts and search queries (the server caches embeddings by text,
//! up to 10,000 vectors of 1.5 KiB) come from fixed pools and are reused again and again, so
//! the data the server holds plateaus and RSS growth after the warm-up points at the server,
//! not at the workload. (PostgreSQL's version history and audit log do grow, in the database;
//! `files.versions` answers grow with the history.)

/// Namespace of every memory key and context document the soak writes.
pub const NAMESPACE: &str = "soak";
/// Memory keys shared by all clients.
pub const MEMORY_KEYS: u64 = 256;
/// Files every client reads, races on with `expected_version` and locks.
pub const SHARED_FILES: u64 = 32;
/// Files each client alone writes and edits.
pub const OWN_FILES: usize = 4;
/// Context documents (re-adding an id replaces the document).
pub const DOCS: u64 = 64;
/// Documents each document is related to (`relate` edges: at most `DOCS * RELATED`).
pub const RELATED: u64 = 4;
/// Knowledge-graph entities.
pub const ENTITIES: u64 = 64;
/// Observations (added with append-unique semantics, so each entity holds at most these).
pub const OBSERVATIONS: u64 = 24;
/// Document texts.
pub const TEXTS: u64 = 128;
/// Search queries.
pub const QUERIES: u64 = 128;

const WORDS: [&str; 48] = [
    "river", "engine", "garden", "signal", "harbor", "lantern", "meadow", "circuit", "copper",
    "glacier", "orchard", "compass", "thunder", "velvet", "mosaic", "canyon", "falcon", "quartz",
    "beacon", "timber", "saffron", "tunnel", "nebula", "pebble", "cobalt", "willow", "summit",
    "ember", "harvest", "island", "jungle", "kernel", "ledger", "marble", "needle", "oxygen",
    "parrot", "ripple", "silver", "tundra", "update", "vortex", "walnut", "yonder", "zephyr",
    "anchor", "bridge", "cactus",
];

/// SplitMix64: a small, seeded, reproducible generator (no dependency needed).
pub struct Rng(u64);

impl Rng {
    /// A generator for client `client`.
    pub fn new(client: usize) -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15 ^ (client as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `count` random words separated by spaces.
    pub fn words(&mut self, count: usize) -> String {
        let mut text = String::new();
        for i in 0..count {
            if i > 0 {
                text.push(' ');
            }
            let word = *self.pick(&WORDS);
            text.push_str(word);
        }
        text
    }
}

/// Memory key `i`.
pub fn memory_key(i: u64) -> String {
    format!("soak:k{i:03}")
}

/// Shared file `i`, relative to the files root.
pub fn shared_path(i: u64) -> String {
    format!("shared/f{i:02}.txt")
}

/// The directory of client `client`'s own files.
pub fn own_dir(client: usize) -> String {
    format!("own/c{client:02}")
}

/// Document id `i`.
pub fn doc_id(i: u64) -> String {
    format!("soak-doc-{i:02}")
}

/// Entity name `i`.
pub fn entity(i: u64) -> String {
    format!("soak-entity-{i:02}")
}

/// Observation `i`.
pub fn observation(i: u64) -> String {
    format!("soak observation {i:02}")
}

/// Document text `i` of the pool: 20 to 119 words.
pub fn doc_text(i: u64) -> String {
    let mut rng = Rng::new(1_000_000 + i as usize);
    let words = 20 + rng.below(100) as usize;
    rng.words(words)
}

/// Search query `i` of the pool: 2 or 3 words.
pub fn query(i: u64) -> String {
    let mut rng = Rng::new(2_000_000 + i as usize);
    let words = 2 + rng.below(2) as usize;
    rng.words(words)
}

/// The content of an own file: one `state N` line the edits replace, then filler words (which
/// never contain `state`, so the edited text occurs exactly once).
pub fn own_content(state: u64, rng: &mut Rng) -> String {
    let words = 32 + rng.below(480) as usize;
    format!("# soak file\nstate {state}\n{}\n", rng.words(words))
}
