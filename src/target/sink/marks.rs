//! Exactly-once stable sync on a cluster: a flow's units are grouped per slot into marked
//! transactions (see [`crate::target::marker`]); on resume the markers are read back and every
//! unit its slot already holds is skipped.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{b, ClusterSink};
use crate::apply::conn::PipeError;
use crate::resp::Frame;
use crate::target::marker::{group_commands, parse_lsn, ungroup, Applied, Group, SlotMarkers};
use crate::target::node::{ClusterCounters, Unit, UnitKind};
use crate::target::route::SLOTS;

/// How long a slot that answered `ASK`/`TRYAGAIN` is written unit by unit, unmarked.
const MIGRATING_FOR: Duration = Duration::from_secs(5);

/// The marker state of one flow's sink.
#[derive(Debug)]
pub(super) struct Marks {
    markers: SlotMarkers,
    flow: usize,
    /// `flow` as the marker field.
    field: Bytes,
    applied: Applied,
    groups: BTreeMap<u16, Group>,
    migrating: HashMap<u16, Instant>,
}

impl Marks {
    /// Whether units wait in per-slot transactions.
    pub(super) fn has_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    fn is_migrating(&mut self, slot: u16) -> bool {
        match self.migrating.get(&slot) {
            Some(t) if t.elapsed() < MIGRATING_FOR => true,
            Some(_) => {
                self.migrating.remove(&slot);
                false
            }
            None => false,
        }
    }
}

impl ClusterSink {
    /// Turns per-slot markers on for flow `flow`, under the task's marker key `base`.
    pub fn enable_markers(&mut self, base: &[u8], flow: usize) {
        self.marks = Some(Marks {
            markers: SlotMarkers::new(base),
            flow,
            field: Bytes::from(flow.to_string()),
            applied: Applied::default(),
            groups: BTreeMap::new(),
            migrating: HashMap::new(),
        });
    }

    /// The journal record the next pushed commands come from (`None`: snapshot data).
    pub fn set_lsn(&mut self, lsn: Option<u64>) {
        self.cur_lsn = lsn;
    }

    /// Reads what the target already holds of this flow (one `HGET` per slot) and of the
    /// global commands of every flow (`flows` of them).
    pub async fn load_markers(&mut self, flows: usize) -> Result<(), PipeError> {
        let Some(m) = &self.marks else { return Ok(()) };
        let (markers, flow) = (m.markers.clone(), m.flow);
        let field = Bytes::from(flow.to_string());
        let saved = self.cur_lsn.take();
        for s in 0..SLOTS {
            self.push_any_db(&[b("HGET"), markers.key(s), field.clone()]);
        }
        let mut hmget = vec![b("HMGET"), markers.flush_key()];
        hmget.extend((0..flows).map(|f| Bytes::from(f.to_string())));
        self.push_any_db(&hmget);
        let replies = self.round_trip().await;
        self.cur_lsn = saved;
        let replies = replies?;
        let lsn = |f: &Frame| match f {
            Frame::Bulk(v) => parse_lsn(v),
            _ => None,
        };
        let mut applied = Applied::default();
        for (s, f) in replies.iter().take(usize::from(SLOTS)).enumerate() {
            applied.slots[s] = lsn(f).unwrap_or(0);
        }
        if let Some(Frame::Array(items)) = replies.get(usize::from(SLOTS)) {
            applied.flush = items.iter().map(|f| lsn(f).unwrap_or(0)).collect();
        }
        let marked = applied.slots.iter().filter(|l| **l > 0).count();
        tracing::info!(flow, slots_marked = marked, "cluster resume: per-slot markers read");
        if let Some(m) = &mut self.marks {
            m.applied = applied;
        }
        Ok(())
    }

    /// Deletes every marker of the task (a full sync starts without flushing the target).
    pub async fn clear_markers(&mut self) -> Result<(), PipeError> {
        let Some(m) = &self.marks else { return Ok(()) };
        let markers = m.markers.clone();
        let saved = self.cur_lsn.take();
        for s in 0..SLOTS {
            self.push_any_db(&[b("UNLINK"), markers.key(s)]);
        }
        self.push_any_db(&[b("UNLINK"), markers.flush_key()]);
        let r = self.drain().await;
        self.cur_lsn = saved;
        r
    }

    /// Whether the global command reaching `next` (per flow) is already applied.
    pub fn flush_applied(&self, next: &[u64]) -> bool {
        self.marks.as_ref().is_some_and(|m| m.applied.flushed(next))
    }

    /// Records that the global command reaching `next` (per flow) is applied; the slot markers
    /// it wiped no longer hold anything.
    pub async fn mark_flush(&mut self, next: &[u64]) -> Result<(), PipeError> {
        let Some(m) = &mut self.marks else { return Ok(()) };
        m.applied = Applied { flush: next.to_vec(), ..Applied::default() };
        let mut a = vec![b("HSET"), m.markers.flush_key()];
        for (f, l) in next.iter().enumerate() {
            a.push(Bytes::from(f.to_string()));
            a.push(Bytes::from(l.to_string()));
        }
        let saved = self.cur_lsn.take();
        let r = self.request(a).await.map(drop);
        self.cur_lsn = saved;
        r
    }

    /// Routes a data unit of the record being applied: skipped if its slot holds it already,
    /// grouped into the slot's marked transaction, or (snapshot data, replies, a slot being
    /// migrated) sent as it is.
    pub(super) async fn emit(&mut self, mut u: Unit) -> Result<(), PipeError> {
        if let (Some(m), Some(l), Some(slot)) = (&mut self.marks, self.route_lsn, u.slot) {
            if u.kind == UnitKind::Data && u.reply.is_none() {
                if m.applied.holds(slot, l) {
                    ClusterCounters::inc(&self.counters.replay_skipped);
                    return Ok(());
                }
                if u.conflict.is_none() && !m.is_migrating(slot) {
                    u.lsn = Some(l);
                    let g = m.groups.entry(slot).or_default();
                    g.max_lsn = g.max_lsn.max(l);
                    g.units.push(u);
                    return Ok(());
                }
            }
        }
        self.flush_groups().await?;
        self.send(u).await
    }

    /// Sends every pending group as one marked transaction per slot.
    pub(super) async fn flush_groups(&mut self) -> Result<(), PipeError> {
        let Some(m) = &mut self.marks else { return Ok(()) };
        if m.groups.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(m.groups.len());
        for (slot, g) in std::mem::take(&mut m.groups) {
            let (seq, lsn) = (g.units.first().map_or(0, |p| p.seq), g.max_lsn);
            let (cmds, parts) = group_commands(&m.markers, slot, &m.field, g);
            let mut u = Unit::data(seq, cmds, Some(slot));
            u.lsn = Some(lsn);
            u.parts = parts;
            out.push(u);
        }
        for u in out {
            self.send(u).await?;
        }
        Ok(())
    }

    /// A marked transaction met a slot in migration (`ASK`, `TRYAGAIN`): its keys may sit on
    /// either node, so its units go one by one (each redirected on its own) and the slot is
    /// written unmarked for a while. Returns the units to resend.
    pub(super) fn unbundle(&mut self, u: &Unit) -> Vec<Unit> {
        if let (Some(m), Some(slot)) = (&mut self.marks, u.slot) {
            m.migrating.insert(slot, Instant::now());
        }
        ungroup(u)
    }
}
