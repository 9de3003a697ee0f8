//! A partition's committed records, read in offset order one at a time: a reader of whole
//! partitions (`verify`) holds a record per side, not the partitions (it held both in memory,
//! gigabytes for a partition of millions of records).
use std::time::{Duration, Instant};

use kmirror_state::{RecordData, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{Error, Result, Side};
use crate::kafka::client::CreateForRole;
use crate::kafka::watermarks::{committed_end, log_starts_with};

pub(crate) struct CommittedRecords {
    consumer: BaseConsumer,
    side: Side,
    tp: TopicPartition,
    /// Where the read ends (exclusive): the partition's committed end when it was opened, or
    /// the bound asked for if lower.
    end: i64,
    /// How long no record may come before the read fails.
    stall: Duration,
    next: Option<(i64, RecordData)>,
    /// The last offset handed out: librdkafka can deliver a record again (see
    /// `mirror::read_guard`), and a reader in step with another must see each once.
    last: Option<i64>,
    done: bool,
}

impl CommittedRecords {
    /// The read_committed records of `tp` from `from`, below `until` if given.
    pub(crate) fn open(
        config: &ClientConfig,
        side: Side,
        tp: &TopicPartition,
        from: i64,
        until: Option<i64>,
        stall: Duration,
    ) -> Result<Self> {
        // Records deleted under the read (retention) fail it: librdkafka's default jumps to
        // the end, and the records jumped over would be neither checked nor missing.
        let consumer: BaseConsumer = config
            .clone()
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "error")
            .create_for_role()
            .map_err(Error::kafka(side, "creating a reader"))?;
        let mut tpl = TopicPartitionList::new();
        let start = if from > 0 { Offset::Offset(from) } else { Offset::Beginning };
        tpl.add_partition_offset(&tp.topic, tp.partition, start).map_err(Error::kafka(side, "assigning"))?;
        consumer.assign(&tpl).map_err(Error::kafka(side, "assigning"))?;
        let end = committed_end(&consumer, &tp.topic, tp.partition, stall)
            .map_err(Error::kafka(side, format!("reading the end of {tp}")))?;
        let end = until.map_or(end, |until| until.min(end));
        // A partition whose records were all deleted delivers none, and its position stays
        // unknown: the read would wait out its stall.
        let start = log_starts_with(&consumer, std::slice::from_ref(tp), stall)
            .map_err(Error::kafka(side, format!("reading where {tp} starts")))?
            .get(tp)
            .copied()
            .unwrap_or(0);
        let done = from.max(start) >= end;
        Ok(Self { consumer, side, tp: tp.clone(), end, stall, next: None, last: None, done })
    }

    /// The offset of the record [`Self::next`] returns, without taking it.
    pub(crate) fn peek(&mut self) -> Result<Option<i64>> {
        self.fill()?;
        Ok(self.next.as_ref().map(|(offset, _)| *offset))
    }

    /// The next record and its offset; None past the end.
    pub(crate) fn next(&mut self) -> Result<Option<(i64, RecordData)>> {
        self.fill()?;
        Ok(self.next.take())
    }

    fn fill(&mut self) -> Result<()> {
        if self.next.is_some() || self.done {
            return Ok(());
        }
        let mut progress = Instant::now();
        loop {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.offset() >= self.end => {
                    self.done = true;
                    return Ok(());
                }
                Some(Ok(m)) if self.last.is_some_and(|last| m.offset() <= last) => {
                    progress = Instant::now();
                }
                Some(Ok(m)) => {
                    self.last = Some(m.offset());
                    self.next = Some((m.offset(), RecordData::of(&m)));
                    return Ok(());
                }
                Some(Err(e)) => return Err(Error::kafka(self.side, format!("reading {}", self.tp))(e)),
                None => {}
            }
            // Past the end once the last records are commit markers, which are never delivered.
            let position =
                match self.consumer.position().ok().and_then(|p| p.elements().first().map(|e| e.offset())) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                };
            if position >= self.end {
                self.done = true;
                return Ok(());
            }
            // A stall ends the read, not its length: a partition of many millions of records
            // takes minutes to read whole.
            if progress.elapsed() > self.stall {
                return Err(Error::SlowRead {
                    side: self.side,
                    partition: self.tp.to_string(),
                    seconds: self.stall.as_secs(),
                    stalled: true,
                });
            }
        }
    }
}
