//! Writing the vector file: graph, label and checksums under a temp name,
//! synced and renamed over the old file (sealed whole when the data folder is
//! encrypted); and the three-step save that lets searches go on meanwhile.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use rusqlite::Connection;

use super::file::{self, Label};
use super::VectorIndex;
use crate::config::VECTOR_FORMAT_VERSION;
use crate::encryption::{seal, DataKey};
use crate::error::{Error, ErrorKind, Result};
use crate::store::tables;

/// What [`VectorIndex::save_begin`] saw, for [`VectorIndex::save_end`].
#[derive(Debug, Clone, Copy)]
pub struct SaveTicket {
    generation: i64,
    changes: u64,
}

impl VectorIndex {
    /// Catches up with the store and writes the vector file if it changed since
    /// the last save. Only the holder of the writer lock may call this.
    pub fn save(&mut self, conn: &Connection) -> Result<()> {
        if let Some(ticket) = self.save_begin(conn)? {
            self.write_shared()?;
            self.save_end(ticket);
        }
        Ok(())
    }

    /// A save in three steps, so that searches go on while the file is
    /// written (tens of milliseconds at 10k vectors, seconds at 1M): this one
    /// under the index's write lock catches up with the store and says
    /// whether there is anything to write; [`VectorIndex::write_shared`] then
    /// needs only a shared borrow (nothing can change meanwhile);
    /// [`VectorIndex::save_end`] under the write lock again records it.
    pub fn save_begin(&mut self, conn: &Connection) -> Result<Option<SaveTicket>> {
        self.catch_up(conn)?;
        if !self.dirty && self.saved_generation == self.generation {
            return Ok(None);
        }
        if self.pending.is_none() {
            self.pending = Some(tables::chunks_without_vectors(conn, &self.embedder_id)?);
        }
        Ok(Some(self.ticket()))
    }

    /// The state a file written now stands for.
    fn ticket(&self) -> SaveTicket {
        SaveTicket {
            generation: self.generation,
            changes: self.changes,
        }
    }

    /// Records a save written by [`VectorIndex::write_shared`] after
    /// [`VectorIndex::save_begin`] gave `ticket`, unless the vectors changed
    /// in between (then the next save writes them again).
    pub fn save_end(&mut self, ticket: SaveTicket) {
        if ticket.changes == self.changes && ticket.generation == self.generation {
            self.saved_generation = ticket.generation;
            self.dirty = false;
        }
    }

    pub(super) fn write_file(&mut self) -> Result<()> {
        self.write_shared()?;
        self.save_end(self.ticket());
        Ok(())
    }

    /// Writes graph and label as one file: graph to a temp file (per process),
    /// label and trailer appended, fsync, rename over the old file.
    pub fn write_shared(&self) -> Result<()> {
        // A process that opened while another held the writer lock did not
        // make the folder (a first index run racing a reader, say).
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = self
            .path
            .with_extension(format!("vectors.{}.tmp", std::process::id()));
        let result = self
            .write_temp(&tmp)
            .and_then(|()| std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_temp(&self, tmp: &Path) -> Result<()> {
        if let Some(key) = &self.key {
            return self.write_sealed(tmp, key);
        }
        let save_err =
            |e: String| Error::new(ErrorKind::Vectors, format!("cannot save vectors: {e}"));
        self.index
            .save(&tmp.to_string_lossy())
            .map_err(|e| save_err(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(tmp)
            .map_err(|e| Error::io(tmp, e))?;
        let io = |e: std::io::Error| Error::io(tmp, e);
        let graph_bytes = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 8];
        file.read_exact(&mut head).map_err(io)?;
        let links = file::links_start(&head)
            .map_or(graph_bytes, |start| start as u64)
            .min(graph_bytes);
        let crc32 = file::checksum(&mut file, 0..graph_bytes).map_err(io)?;
        let links_crc32 = file::checksum(&mut file, links..graph_bytes).map_err(io)?;
        let trailer = self.trailer(graph_bytes, crc32, links_crc32)?;
        file.write_all(&trailer)
            .and_then(|()| file.sync_all())
            .map_err(|e| save_err(format!("{}: {e}", tmp.display())))
    }

    /// What follows a graph of `graph_bytes` with these checksums in a file.
    fn trailer(&self, graph_bytes: u64, crc32: u32, links_crc32: u32) -> Result<Vec<u8>> {
        let label = Label {
            format: VECTOR_FORMAT_VERSION,
            embedder_id: self.embedder_id.clone(),
            dimensions: self.dimensions,
            count: self.index.size(),
            removal_seq: self.removal_seq,
            generation: self.generation,
            store_id: self.store_id,
            graph_bytes,
            crc32,
            links_crc32: Some(links_crc32),
            pending: self.pending.as_ref().map(HashMap::len),
            rebuild_through: self.rebuild_through,
        };
        file::trailer(&label).map_err(|e| Error::new(ErrorKind::Internal, e))
    }

    /// The same file, built in memory and sealed whole: no plain byte of it
    /// reaches the disk.
    fn write_sealed(&self, tmp: &Path, key: &DataKey) -> Result<()> {
        let save_err =
            |e: String| Error::new(ErrorKind::Vectors, format!("cannot save vectors: {e}"));
        let mut bytes = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut bytes)
            .map_err(|e| save_err(e.to_string()))?;
        let links = file::links_range(&bytes).unwrap_or(bytes.len()..bytes.len());
        let trailer = self.trailer(
            bytes.len() as u64,
            crc32fast::hash(&bytes),
            crc32fast::hash(&bytes[links]),
        )?;
        bytes.extend_from_slice(&trailer);
        let sealed = seal::seal(key, &bytes);
        let mut file = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        file.write_all(&sealed)
            .and_then(|()| file.sync_all())
            .map_err(|e| save_err(format!("{}: {e}", tmp.display())))
    }
}
