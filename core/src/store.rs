//! `Store<T>`: one typed document in one file, committed with Replace.
//!
//! ```
//! use fsatomic::{Dir, Mode, Store, StoreError};
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Counter { hits: u32 }
//!
//! fn hit<D: Dir>(dir: &mut D) -> Result<u32, StoreError<D::Error>> {
//!     let store: Store<Counter> = Store::new("counter.json", Mode::PRIVATE);
//!     let mut buf = [0u8; 256];
//!     // Lock, load (or Default if absent), modify, commit durably, unlock.
//!     store.update(dir, &mut buf, |c| { c.hits += 1; c.hits })
//! }
//! ```

use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Mode;
use crate::error::{LoadError, StoreError};
use crate::fs::Dir;
use crate::{codec, load, lock, name, recover, replace};

/// A typed document stored in the file `name` of a directory.
///
/// A `Store` holds no file and no buffer: every call takes the directory
/// and a caller-provided buffer, which must hold the whole indented
/// document (and, when loading, room for the longest string after it).
#[derive(Debug, Clone, Copy)]
pub struct Store<'a, T> {
    name: &'a str,
    mode: Mode,
    _value: PhantomData<fn() -> T>,
}

impl<'a, T> Store<'a, T> {
    /// A store of `T` in the file `name`, written with permissions `mode`.
    /// The name is checked at each call.
    pub const fn new(name: &'a str, mode: Mode) -> Self {
        Store {
            name,
            mode,
            _value: PhantomData,
        }
    }

    /// The file's name.
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// The permissions every commit gives the file.
    pub const fn mode(&self) -> Mode {
        self.mode
    }
}

impl<T: Serialize + DeserializeOwned> Store<'_, T> {
    /// Load the document: `Ok(None)` if the file does not exist.
    ///
    /// Takes no lock and changes nothing on disk. An empty, cut-short or
    /// unparsable file is [`LoadError::Corrupt`] with the byte offset.
    pub fn load<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<Option<T>, StoreError<D::Error>> {
        let Some(len) = load::read(dir, self.name, buf)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode::<T, D::Error>(self.name, buf, len)?))
    }

    /// Replace the document with `value`, durably.
    ///
    /// The value is encoded into `buf` before anything touches the disk;
    /// then, under the writers' lock, orphaned temporary files of this
    /// store are swept and the document is committed with Replace.
    pub fn save<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        value: &T,
    ) -> Result<(), StoreError<D::Error>> {
        let len = self.encode(value, buf)?;
        let _guard = self.lock(dir)?;
        self.commit(dir, buf, len)
    }

    /// Read, modify and write the document under the writers' lock.
    ///
    /// Takes the lock, sweeps orphans, loads the document (or
    /// `T::default()` if the file is absent), calls `f`, commits the result
    /// with Replace, and releases the lock. Returns what `f` returned. A
    /// corrupt file fails the call before `f` runs and is left untouched.
    pub fn update<D: Dir, R>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, StoreError<D::Error>>
    where
        T: Default,
    {
        let _guard = self.lock(dir)?;
        let mut value = self.load(dir, buf)?.unwrap_or_default();
        let out = f(&mut value);
        let len = self.encode(&value, buf)?;
        self.commit(dir, buf, len)?;
        Ok(out)
    }

    fn encode<E>(&self, value: &T, buf: &mut [u8]) -> Result<usize, StoreError<E>> {
        codec::encode(value, buf).map_err(|error| StoreError::Encode {
            file: name::owned(self.name),
            error,
        })
    }

    /// Take the writers' lock, after checking the name.
    fn lock<D: Dir>(&self, dir: &mut D) -> Result<D::Lock, StoreError<D::Error>> {
        name::validate(self.name).map_err(|error| {
            StoreError::Load(LoadError::Name {
                file: name::owned(self.name),
                error,
            })
        })?;
        Ok(lock::lock(dir, self.name, self.mode)?)
    }

    /// Under the lock: sweep this store's orphans, commit `buf[..len]`.
    fn commit<D: Dir>(
        &self,
        dir: &mut D,
        buf: &[u8],
        len: usize,
    ) -> Result<(), StoreError<D::Error>> {
        recover::sweep_orphans(dir, Some(self.name))?;
        let data = buf.get(..len).unwrap_or_default();
        Ok(replace::commit(dir, self.name, data, self.mode)?)
    }
}
