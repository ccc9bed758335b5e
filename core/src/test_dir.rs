//! A plain in-memory directory for the core's unit tests: no crash model
//! (the crash-model filesystem lives in the test kit), just enough to run
//! the protocols and to poke at the bytes they write.

extern crate std;

use core::ops::ControlFlow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

use embedded_io::ErrorKind;

use crate::{Capabilities, Mode};

type Files = Rc<RefCell<BTreeMap<String, Rc<RefCell<Vec<u8>>>>>>;

/// An in-memory directory.
#[derive(Clone, Default)]
pub struct MemDir {
    pub files: Files,
    pub token: u64,
    pub fat: bool,
    pub syncs: Rc<RefCell<usize>>,
}

impl MemDir {
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.files.borrow().get(name).map(|f| f.borrow().clone())
    }

    pub fn set(&self, name: &str, data: &[u8]) {
        self.files
            .borrow_mut()
            .insert(name.to_string(), Rc::new(RefCell::new(data.to_vec())));
    }

    pub fn names(&self) -> Vec<String> {
        self.files.borrow().keys().cloned().collect()
    }
}

pub struct MemFile {
    data: Rc<RefCell<Vec<u8>>>,
    pos: usize,
    syncs: Rc<RefCell<usize>>,
}

impl embedded_io::ErrorType for MemFile {
    type Error = ErrorKind;
}

impl embedded_io::Read for MemFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let data = self.data.borrow();
        let n = buf.len().min(data.len().saturating_sub(self.pos));
        buf[..n].copy_from_slice(&data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let mut data = self.data.borrow_mut();
        if data.len() < self.pos + buf.len() {
            data.resize(self.pos + buf.len(), 0);
        }
        data[self.pos..self.pos + buf.len()].copy_from_slice(buf);
        self.pos += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl embedded_io::Seek for MemFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, ErrorKind> {
        let len = self.data.borrow().len() as i64;
        let at = match pos {
            embedded_io::SeekFrom::Start(n) => n as i64,
            embedded_io::SeekFrom::End(n) => len + n,
            embedded_io::SeekFrom::Current(n) => self.pos as i64 + n,
        };
        self.pos = at.max(0) as usize;
        Ok(self.pos as u64)
    }
}

impl crate::File for MemFile {
    fn sync_data(&mut self) -> Result<(), ErrorKind> {
        *self.syncs.borrow_mut() += 1;
        Ok(())
    }
    fn sync_all(&mut self) -> Result<(), ErrorKind> {
        *self.syncs.borrow_mut() += 1;
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<(), ErrorKind> {
        self.data.borrow_mut().resize(len as usize, 0);
        Ok(())
    }
}

impl crate::Dir for MemDir {
    type Error = ErrorKind;
    type File = MemFile;
    type Lock = ();

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(!self.fat, if self.fat { "vfat" } else { "ram" })
    }
    fn unique_token(&mut self) -> Result<u64, ErrorKind> {
        self.token += 1;
        Ok(self.token.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn create_new(&mut self, name: &str, _mode: Mode) -> Result<MemFile, ErrorKind> {
        let mut files = self.files.borrow_mut();
        if files.contains_key(name) {
            return Err(ErrorKind::AlreadyExists);
        }
        let data = Rc::new(RefCell::new(Vec::new()));
        files.insert(name.to_string(), data.clone());
        Ok(MemFile {
            data,
            pos: 0,
            syncs: self.syncs.clone(),
        })
    }
    fn open_read(&mut self, name: &str) -> Result<Option<MemFile>, ErrorKind> {
        Ok(self.files.borrow().get(name).map(|d| MemFile {
            data: d.clone(),
            pos: 0,
            syncs: self.syncs.clone(),
        }))
    }
    fn open_write(&mut self, name: &str) -> Result<Option<MemFile>, ErrorKind> {
        self.open_read(name)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
        let mut files = self.files.borrow_mut();
        let data = files.remove(from).ok_or(ErrorKind::NotFound)?;
        files.insert(to.to_string(), data);
        Ok(())
    }
    fn remove(&mut self, name: &str) -> Result<(), ErrorKind> {
        self.files.borrow_mut().remove(name);
        Ok(())
    }
    fn sync_dir(&mut self) -> Result<(), ErrorKind> {
        *self.syncs.borrow_mut() += 1;
        Ok(())
    }
    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ErrorKind> {
        let names: Vec<String> = self.files.borrow().keys().cloned().collect();
        for n in names {
            if visit(&n).is_break() {
                break;
            }
        }
        Ok(())
    }
    fn lock(&mut self, _name: &str, _mode: Mode) -> Result<(), ErrorKind> {
        Ok(())
    }
}
