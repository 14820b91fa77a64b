use std::time::Instant;
fn main() {
    let text = std::fs::read("/tmp/kjv.txt").unwrap();
    let mut buf = Vec::new();
    while buf.len() < 100 << 20 {
        buf.extend_from_slice(&text);
    }
    for _ in 0..3 {
        let t = Instant::now();
        let x = wclab_count::__tok_only(&buf);
        println!(
            "tok {:.0} MB/s {x}",
            buf.len() as f64 / 1e6 / t.elapsed().as_secs_f64()
        );
    }
}
