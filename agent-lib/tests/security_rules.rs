//! The validation rules that close the container-escape paths of issue #11, on fakes: each
//! bad request is refused with `INVALID_ARGUMENT` (or `RESOURCE_EXHAUSTED`) naming the field,
//! and nothing reaches the OS. The real attacks are staged in `attacks.rs`.

mod pod;

use pod::{Pod, code, container_request, message, process};
use ttrpc::Code;

/// `(uid_t)-1`: "no change" to setresuid(2).
const NO_CHANGE: u32 = u32::MAX;

/// A change to a wire user.
type SetUser = fn(&mut agent_protos::oci::User);

#[tokio::test]
async fn uid_or_gid_minus_one_is_refused_for_create_and_exec() {
    let pod = Pod::with_sandbox().await;
    let before = pod.fake.faults.counts();
    let cases: [(&str, SetUser); 3] = [
        ("process.user.uid", |u| u.UID = NO_CHANGE),
        ("process.user.gid", |u| u.GID = NO_CHANGE),
        ("process.user.additionalGids[1]", |u| {
            u.AdditionalGids = vec![10, NO_CHANGE]
        }),
    ];
    for (field, set) in cases {
        let mut req = container_request("c1", &["sleep"], false);
        let user = req.OCI.as_mut().unwrap().Process.as_mut().unwrap();
        set(user.User.mut_or_insert_default());
        let result = pod.create_req(req).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{field}: {msg}");
        assert!(msg.contains(field) && msg.contains("4294967295"), "{msg}");
    }
    assert_eq!(pod.fake.faults.counts(), before, "nothing reached the OS");

    pod.run("c1", &["sleep"]).await;
    for (field, set) in cases {
        let mut p = process(&["sleep"], false);
        set(p.User.mut_or_insert_default());
        let result = pod.client.exec_process("c1", "e1", p).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{field}: {msg}");
        assert!(msg.contains(field), "{msg}");
    }
    assert_eq!(pod.agent.containers().get("c1").unwrap().exec_ids(), ["c1"]);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
