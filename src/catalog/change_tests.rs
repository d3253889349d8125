//! The change table's unit tests.

use super::*;
use crate::storage::VideoId;

#[test]
fn nothing_changes_a_tombstone_and_finished_videos_take_no_job_changes() {
    let deleting = Change::Title("x".into()).allowed(Status::Deleting);
    assert!(matches!(deleting, Err(Error::NotFound)));
    assert!(Change::Ready.allowed(Status::Ready).is_err());
    assert!(Change::Offset(3).allowed(Status::Queued).is_err());
    assert!(Change::Title("x".into()).allowed(Status::Failed).is_ok());
    assert!(Change::Deleting.allowed(Status::Processing).is_ok());
    let caps = Change::Captions {
        tracks: vec![],
        storage_bytes: 0,
    };
    assert_eq!(caps.allowed(Status::Failed).unwrap_err().status(), 409);
}

#[test]
fn a_multipart_upload_is_announced_once_and_deleted_quietly_before() {
    let mut r = Record::new(VideoId::random(), None, 0);
    r.unannounced = true;
    assert_eq!(Change::Deleting.apply(&mut r.clone()), vec![]);
    let done = Change::Complete {
        bytes: 9,
        running: false,
        title: None,
    };
    assert_eq!(done.apply(&mut r), vec![Event::Created]);
    assert_eq!(r.status, Status::Queued);
    assert_eq!(done.apply(&mut r), vec![]);
    assert_eq!(Change::Deleting.apply(&mut r), vec![Event::Deleted]);
}
