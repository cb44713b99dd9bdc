//! gzip MiB/s and ratio of one file at levels 1 and 6 with the compiled-in flate2 backend.
use std::io::Write as _;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: gzip-backends FILE");
    let data = std::fs::read(path).expect("read");
    let backend = if cfg!(feature = "zlib-rs") { "zlib-rs" } else { "miniz_oxide (flate2 default)" };
    for level in [1u32, 6] {
        let mut out = 0;
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed().as_secs_f64() < 2.0 {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            enc.write_all(&data).expect("gzip");
            out = enc.finish().expect("gzip").len();
            n += 1;
        }
        let secs = started.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "{backend:<30} level {level}: {:>7.1} MiB/s, {:.2} ms per MiB, ratio {:.1}x",
            data.len() as f64 / secs / 1048576.0,
            secs * 1e3 * 1048576.0 / data.len() as f64,
            data.len() as f64 / out as f64
        );
    }
}
