//! The traffic mirror service of an account and region: OpenTrafficMirrorService and
//! GetTrafficMirrorServiceStatus. `RegionId` is optional here (the server's region).

use serde_json::json;
use tapwire_control::ApiError;
use tapwire_control::ops::Operation;

use super::exchange::Exchange;
use super::{Fields, fields};

pub(super) fn open_service(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.write_service(Operation::OpenService)?;
    Ok(fields(json!({ "Code": "200", "Message": "successful" })))
}

pub(super) fn service_status(x: &Exchange<'_>) -> Result<Fields, ApiError> {
    x.authorize_read()?;
    let enabled = x.state().service_open(&x.service_scope()?);
    Ok(fields(json!({ "Enabled": enabled })))
}
