//! Two-thread streaming for the big tables: one thread reads and resolves the v1 rows while this
//! one hands the v2 rows to the writer (checking and encoding them for `COPY`, or inserting them
//! into SQLite's scratch file), so that the two halves of the write stage share the cores
//! instead of taking turns on one.

use std::sync::mpsc::sync_channel;

use crate::error::PipelineError;

/// Rows per batch handed from the reading thread to the writing one.
const BATCH: usize = 1024;
/// Batches in flight: the memory between the threads is bounded by `BATCH × DEPTH` rows.
const DEPTH: usize = 4;

/// Runs `produce` on a second thread and feeds every row it emits, in the order emitted, to
/// `consume` on this thread. Either side's first error stops both; the consumer's is returned
/// first (the producer then only learns that nobody reads any more). `table` names the v1 table
/// in the error should the reading thread panic.
pub(crate) fn pipelined<R: Send>(
    table: &str,
    produce: impl FnOnce(&mut dyn FnMut(R) -> Result<(), PipelineError>) -> Result<(), PipelineError>
        + Send,
    mut consume: impl FnMut(R) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let stopped = |reason: &str| PipelineError::Mapping {
        table: table.to_string(),
        key: "(all rows)".into(),
        reason: reason.to_string(),
    };
    let (tx, rx) = sync_channel::<Vec<R>>(DEPTH);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let produced = produce(&mut |row| {
                batch.push(row);
                if batch.len() < BATCH {
                    return Ok(());
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                tx.send(full)
                    .map_err(|_| stopped("the writer stopped reading"))
            });
            if produced.is_ok() && !batch.is_empty() {
                // A failed send means the consumer already stopped with its own error.
                let _ = tx.send(batch);
            }
            produced
        });
        let mut consumed = Ok(());
        'batches: for batch in rx.iter() {
            for row in batch {
                if let Err(e) = consume(row) {
                    consumed = Err(e);
                    break 'batches;
                }
            }
        }
        // Unblocks a producer waiting on a full channel, which then stops.
        drop(rx);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(stopped("the thread reading v1 panicked")));
        consumed.and(produced)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(reason: &str) -> PipelineError {
        PipelineError::Mapping {
            table: "t".into(),
            key: "k".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn every_row_arrives_in_order() {
        let mut seen = Vec::new();
        pipelined(
            "t",
            |emit| (0..10_000u32).try_for_each(&mut *emit),
            |i| {
                seen.push(i);
                Ok(())
            },
        )
        .expect("no error");
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn the_consumers_error_wins_and_stops_the_producer() {
        let mut emitted = 0u32;
        let r = pipelined(
            "t",
            |emit| {
                for i in 0..1_000_000u32 {
                    emitted += 1;
                    emit(i)?;
                }
                Ok(())
            },
            |i| {
                if i == 5_000 {
                    Err(failure("consumer"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(r, Err(PipelineError::Mapping { reason, .. }) if reason == "consumer"));
        // The producer stopped soon after: at most the batches in flight were read ahead.
        assert!(emitted < 5_000 + ((DEPTH + 2) * BATCH) as u32, "{emitted}");
    }

    #[test]
    fn the_producers_error_is_returned_after_its_rows() {
        let mut seen = 0u32;
        let r = pipelined(
            "t",
            |emit| {
                (0..2_500u32).try_for_each(&mut *emit)?;
                Err(failure("producer"))
            },
            |_| {
                seen += 1;
                Ok(())
            },
        );
        assert!(matches!(r, Err(PipelineError::Mapping { reason, .. }) if reason == "producer"));
        // Full batches went through; the last partial batch is dropped with the error.
        assert_eq!(seen, 2 * BATCH as u32);
    }

    #[test]
    fn a_panicking_producer_is_an_error_naming_the_table() {
        let r = pipelined::<u32>("prayermark", |_| panic!("boom"), |_| Ok(()));
        assert!(matches!(r, Err(PipelineError::Mapping { table, .. }) if table == "prayermark"));
    }
}
