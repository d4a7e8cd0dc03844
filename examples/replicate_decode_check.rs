//! Decodes every flow of every corpus capture with the flow decoder and counts events
//! (a quick check that the decoder + value codec handle the real bytes).
use df2redis::proto::flow::FlowDecoder;
use df2redis::proto::{Event, Limits};

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "corpus/dragonfly-v1.40.1".into());
    let mut dirs: Vec<_> = std::fs::read_dir(&root).expect("corpus").flatten().map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let Ok(cap) = std::fs::read_to_string(d.join("capture.json")) else { continue };
        let cap: serde_json::Value = serde_json::from_str(&cap).expect("json");
        for i in 0..2 {
            let tok = cap["eof_tokens"][i].as_str().expect("token");
            let mut t = [0u8; 40];
            t.copy_from_slice(tok.as_bytes());
            let bytes = std::fs::read(d.join(format!("flow{i}.bin"))).expect("flow");
            let mut dec = FlowDecoder::full_sync(t, Limits::default());
            dec.feed(&bytes);
            let (mut ents, mut blobs, mut recs) = (0, 0, 0);
            loop {
                match dec.next_event() {
                    Ok(Some(Event::EntryEnd { .. })) => ents += 1,
                    Ok(Some(Event::JournalBlob { .. })) => blobs += 1,
                    Ok(Some(Event::Journal { .. })) => recs += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        println!("{} flow{i}: ERROR {e}", d.display());
                        break;
                    }
                }
            }
            println!(
                "{} flow{i}: entries={ents} blobs={blobs} records={recs} next_lsn={:?}",
                d.display(),
                dec.next_lsn()
            );
        }
    }
}
