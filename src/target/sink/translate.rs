//! Cross-slot commands a cluster cannot run as one command, turned into equivalent sequences
//! (see [`Translation`]). Reads come first; each write is one unit in its key's slot; when a
//! sequence writes two slots, the destination is confirmed before the source changes, so a
//! sequence cut by a crash or failover is completed exactly on resume (per-slot markers skip
//! the half that landed, and the source still holds what the other half needs).

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{b, io, ClusterSink};
use crate::apply::conn::PipeError;
use crate::apply::Args;
use crate::resp::Frame;
use crate::target::node::Unit;
use crate::target::route::key_slot;
use crate::target::split::{temp_prefix, Translation};

impl ClusterSink {
    /// Sends `cmds` to the node of `key`'s slot and waits for the replies (everything queued
    /// before it is applied first).
    pub(super) async fn call(&mut self, key: &[u8], cmds: Vec<Args>) -> Result<Vec<Frame>, PipeError> {
        self.flush_groups().await?;
        let (tx, rx) = oneshot::channel();
        let seq = self.next_seq();
        let mut u = Unit::data(seq, cmds, Some(key_slot(key)));
        u.reply = Some(tx);
        self.send(u).await?;
        self.seal_nodes(None).await?;
        self.settle().await?;
        rx.await.map_err(|_| io("cluster", "reply lost"))
    }

    /// One write in `slot_key`'s slot, routed like a journal command.
    async fn unit(&mut self, slot_key: &[u8], a: Args) -> Result<(), PipeError> {
        let seq = self.next_seq();
        self.emit(Unit::data(seq, vec![a], Some(key_slot(slot_key)))).await
    }

    /// With markers: waits until every write so far is confirmed (a two-slot sequence's first
    /// half lands before its second half starts).
    async fn order_point(&mut self) -> Result<(), PipeError> {
        if self.marks.is_none() {
            return Ok(());
        }
        self.flush_groups().await?;
        self.seal_nodes(None).await?;
        self.settle().await
    }

    pub(super) async fn translate(&mut self, t: Translation) -> Result<(), PipeError> {
        match t {
            Translation::Rename { src, dst } => {
                let r = self.call(&src, vec![vec![b("DUMP"), src.clone()], vec![b("PTTL"), src.clone()]]).await?;
                match (r.first(), r.get(1)) {
                    (Some(Frame::Bulk(payload)), Some(ttl)) => {
                        let ttl = ttl.as_int().filter(|t| *t > 0).unwrap_or(0);
                        let a = vec![
                            b("RESTORE"),
                            dst.clone(),
                            Bytes::from(ttl.to_string()),
                            payload.clone(),
                            b("REPLACE"),
                        ];
                        self.unit(&dst, a).await?;
                    }
                    _ => self.unit(&dst, vec![b("DEL"), dst.clone()]).await?,
                }
                self.order_point().await?;
                self.unit(&src, vec![b("DEL"), src.clone()]).await
            }
            Translation::ListMove { src, dst, pop, push } => {
                let index = if pop == "LPOP" { "0" } else { "-1" };
                let r = self.call(&src, vec![vec![b("LINDEX"), src.clone(), b(index)]]).await?;
                if let Some(Frame::Bulk(e)) = r.first() {
                    self.unit(&dst, vec![Bytes::from_static(push.as_bytes()), dst.clone(), e.clone()]).await?;
                    self.order_point().await?;
                    self.unit(&src, vec![Bytes::from_static(pop.as_bytes()), src.clone()]).await?;
                }
                Ok(())
            }
            Translation::SetMove { src, dst, member } => {
                let r = self.call(&src, vec![vec![b("SISMEMBER"), src.clone(), member.clone()]]).await?;
                if r.first().and_then(Frame::as_int) == Some(1) {
                    self.unit(&dst, vec![b("SADD"), dst.clone(), member.clone()]).await?;
                    self.order_point().await?;
                    self.unit(&src, vec![b("SREM"), src.clone(), member]).await?;
                }
                Ok(())
            }
            Translation::ViaTemp { mut cmd, dst, sources } => {
                let d = cmd[dst].clone();
                let prefix = temp_prefix(&d).ok_or_else(|| io("cluster", "destination without a usable hash tag"))?;
                // Every read first, then the writes, all in the destination's slot, back to back.
                let mut copies = Vec::new();
                for i in sources {
                    let src = cmd[i].clone();
                    let r = self.call(&src, vec![vec![b("DUMP"), src.clone()]]).await?;
                    let tmp = Bytes::from([&prefix[..], format!(":df2redis:x:{}:{i}", self.seq).as_bytes()].concat());
                    copies.push((tmp.clone(), r.into_iter().next()));
                    cmd[i] = tmp;
                }
                let mut del = vec![b("DEL")];
                for (tmp, payload) in copies {
                    self.unit(&d, vec![b("DEL"), tmp.clone()]).await?;
                    if let Some(Frame::Bulk(p)) = payload {
                        self.unit(&d, vec![b("RESTORE"), tmp.clone(), b("0"), p, b("REPLACE")]).await?;
                    }
                    del.push(tmp);
                }
                self.unit(&d, cmd).await?;
                self.unit(&d, del).await
            }
        }
    }
}
