//! `GET /videos/{id}`: one record.

use super::{json, paths, AppState, Body};
use crate::Error;
use http::{Response, StatusCode};

pub(crate) fn get(state: &AppState, id: &str) -> Result<Response<Body>, Error> {
    if !paths::is_video_id(id) {
        return Err(Error::NotFound);
    }
    let rec = state.catalog.get(id).ok_or(Error::NotFound)?;
    Ok(json(StatusCode::OK, &rec))
}
