//! takt-sequences: cell and sequence files.
