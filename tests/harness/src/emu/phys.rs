//! Emulated physical memory. The backing store is a sparse memfd (so several mappings of the
//! same physical page alias each other, as on real hardware). Content comes from planted
//! segments or from a raw RAM dump (file offset = physical address), copied in 1 MiB chunks
//! only when first touched, so a sparse multi-GiB dump is never read whole. Works with 64-bit
//! offsets in the 32-bit process too.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

const CHUNK: u64 = 1 << 20;

pub struct PhysMem {
    memfd: i32,
    size: u64,
    file: Option<File>,
    populated: Mutex<Vec<u64>>,
}

// SAFETY: the fd is only used through thread-safe syscalls; the bitmap is behind a mutex.
unsafe impl Send for PhysMem {}
// SAFETY: as above.
unsafe impl Sync for PhysMem {}

fn io_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl PhysMem {
    fn with_size(size: u64, file: Option<File>) -> Result<PhysMem, String> {
        let size = size.div_ceil(CHUNK) * CHUNK;
        // SAFETY: valid NUL-terminated name; flags are plain.
        let fd = unsafe { libc::memfd_create(c"rvblk-phys".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io_err("memfd_create"));
        }
        // SAFETY: `fd` is our memfd.
        if unsafe { libc::ftruncate64(fd, size as i64) } != 0 {
            return Err(io_err("ftruncate(memfd)"));
        }
        let chunks = size / CHUNK;
        Ok(PhysMem {
            memfd: fd,
            size,
            file,
            populated: Mutex::new(vec![0u64; chunks.div_ceil(64) as usize]),
        })
    }

    /// Physical memory of `size` bytes, all zero, with `segments` planted.
    pub fn from_segments(size: u64, segments: &[(u64, &[u8])]) -> Result<PhysMem, String> {
        let size = segments
            .iter()
            .map(|(a, d)| a + d.len() as u64)
            .max()
            .unwrap_or(0)
            .max(size);
        let p = PhysMem::with_size(size, None)?;
        for (a, d) in segments {
            p.write(*a, d)?;
        }
        Ok(p)
    }

    /// Physical memory backed by a raw dump (read lazily).
    pub fn from_dump(path: &Path) -> Result<PhysMem, String> {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        PhysMem::with_size(len, Some(f))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn fd(&self) -> i32 {
        self.memfd
    }

    /// Makes sure the chunks covering `[pa, pa+len)` hold the dump's content.
    pub fn ensure(&self, pa: u64, len: u64) -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        if pa.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(format!(
                "physical range {pa:#x}+{len:#x} beyond emulated memory ({:#x})",
                self.size
            ));
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut pop = self.populated.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = Vec::new();
        for c in pa / CHUNK..(pa + len).div_ceil(CHUNK) {
            let (w, b) = ((c / 64) as usize, c % 64);
            if pop[w] >> b & 1 == 1 {
                continue;
            }
            buf.resize(CHUNK as usize, 0);
            let off = c * CHUNK;
            let mut got = 0usize;
            while got < buf.len() {
                // SAFETY: reading into our own buffer's tail.
                let n = unsafe {
                    libc::pread64(
                        file.as_raw_fd(),
                        buf[got..].as_mut_ptr() as *mut libc::c_void,
                        buf.len() - got,
                        (off + got as u64) as i64,
                    )
                };
                if n < 0 {
                    return Err(io_err("pread(dump)"));
                }
                if n == 0 {
                    break;
                }
                got += n as usize;
            }
            for (i, page) in buf[..got].chunks(4096).enumerate() {
                if page.iter().any(|&x| x != 0) {
                    self.pwrite_raw(off + (i * 4096) as u64, page)?;
                }
            }
            pop[w] |= 1 << b;
        }
        Ok(())
    }

    fn pwrite_raw(&self, pa: u64, data: &[u8]) -> Result<(), String> {
        let mut done = 0;
        while done < data.len() {
            // SAFETY: writes from our slice to our memfd.
            let n = unsafe {
                libc::pwrite64(
                    self.memfd,
                    data[done..].as_ptr() as *const libc::c_void,
                    data.len() - done,
                    (pa + done as u64) as i64,
                )
            };
            if n <= 0 {
                return Err(io_err("pwrite(memfd)"));
            }
            done += n as usize;
        }
        Ok(())
    }

    pub fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), String> {
        self.ensure(pa, out.len() as u64)?;
        let mut done = 0;
        while done < out.len() {
            // SAFETY: reads into our slice from our memfd.
            let n = unsafe {
                libc::pread64(
                    self.memfd,
                    out[done..].as_mut_ptr() as *mut libc::c_void,
                    out.len() - done,
                    (pa + done as u64) as i64,
                )
            };
            if n <= 0 {
                return Err(io_err("pread(memfd)"));
            }
            done += n as usize;
        }
        Ok(())
    }

    pub fn write(&self, pa: u64, data: &[u8]) -> Result<(), String> {
        self.ensure(pa, data.len() as u64)?;
        self.pwrite_raw(pa, data)
    }

    /// Maps `len` bytes of physical memory starting at the page-aligned `pa` at the fixed
    /// address `at` (which must be inside a reservation owned by the caller).
    pub fn map_at(&self, at: *mut u8, pa: u64, len: usize) -> Result<(), String> {
        self.ensure(pa, len as u64)?;
        // SAFETY: MAP_FIXED over the caller's own reservation; memfd offset is page aligned.
        let p = unsafe {
            libc::mmap64(
                at as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.memfd,
                pa as i64,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io_err("mmap(memfd)"));
        }
        Ok(())
    }
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.memfd) };
    }
}
