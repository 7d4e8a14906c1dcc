//! `POST /v1/reexec` (`drover daemon-reexec`): root's. The answer only
//! says the re-exec is under way; the loop carries it out once the answer
//! is out (`daemon::reexec`), and the CLI waits for the new image.

use super::Daemon;
use crate::api::http::ActionResponse;
use crate::daemon::auth::Action;
use crate::daemon::http::{ApiReply, ApiRequest};

impl Daemon {
    pub(super) fn api_reexec(&mut self, req: &ApiRequest) -> ApiReply {
        if let Err(refused) = self.check(&req.caller, Action::Reexec, None) {
            return refused;
        }
        if self.cluster.is_some() {
            return ApiReply::error(
                409,
                "daemon-reexec is not supported in cluster mode yet: restart the daemon \
                 instead (its pods keep running and are re-adopted)",
            );
        }
        if self.halting {
            return ApiReply::error(409, "the daemon is stopping every pod, then exiting");
        }
        self.reexec.requested = true;
        tracing::info!(
            "daemon-reexec asked by {}: re-executing {}",
            req.caller.describe(),
            self.reexec.target().display()
        );
        ApiReply::json(
            202,
            &ActionResponse {
                message: format!(
                    "drover (pid {}) is re-executing {}",
                    std::process::id(),
                    self.reexec.target().display()
                ),
            },
        )
    }
}
