"""Pretraining: launch a self-supervised cgcnn run as a background job, watch it, cancel or resume it."""

import time

import streamlit as st

from crystalrep.jobs.pretraining import ACTIVE
from crystalrep.pretrain import TASK_NAMES
from ui import pretraining as pt
from ui import state

st.title("Pretraining")
st.caption("Self-supervised pretraining of the cgcnn encoder on the sidebar dataset. Each run is a background "
           "process with its own folder, so closing the browser loses nothing; every epoch's checkpoint "
           "becomes an encoder `cgcnn@<job-id>` that the other pages can compare with cgcnn-random.")
ref, ds = state.require_dataset()

start = pt.defaults()
with st.form("pretrain.form"):
    st.markdown(f"**New job** on dataset **{ds.name}** ({len(ds):,} crystals)")
    with st.container(horizontal=True, wrap=True):  # fixed widths wrap onto new rows instead of squeezing
        st.selectbox("Pretext task", TASK_NAMES, key=pt.widget_key("task"), width=180,
                     help="denoise: predict the displacements that undo Gaussian noise; contrastive: InfoNCE "
                          "between two physical views; masking: predict hidden elements.")
        st.number_input("Epochs", 1, 10_000, start["epochs"], key=pt.widget_key("epochs"), width=150)
        st.number_input("Batch size", 2, 4096, start["batch_size"], key=pt.widget_key("batch_size"), width=150)
        st.number_input("Learning rate", 1e-6, 1.0, start["lr"], format="%.1e", key=pt.widget_key("lr"), width=150)
        st.number_input("Seed", 0, 2**31 - 1, start["seed"], key=pt.widget_key("seed"), width=150)
        st.number_input("σ noise, Å (denoise, contrastive)", 1e-3, 2.0, start["sigma"], format="%.3f",
                        key=pt.widget_key("sigma"), width=250)
        st.number_input("τ temperature (contrastive)", 1e-3, 10.0, start["tau"], format="%.3f",
                        key=pt.widget_key("tau"), width=250)
        st.number_input("Mask rate (masking)", 0.01, 0.99, start["mask_rate"], format="%.2f",
                        key=pt.widget_key("mask_rate"), width=250)
    if st.form_submit_button("Start pretraining", type="primary", key="pretrain.start"):
        pt.launch(ds.name)
if message := st.session_state.pop(pt.MESSAGE, None):
    (st.error if message[0] == "error" else st.success)(message[1])

listed = pt.job_list()
if not listed:
    st.info("No pretraining job yet. Start one above, or run `crystalrep pretrain --dataset "
            f"{ds.name} --task denoise --epochs 10 --background` in a terminal.")
    st.stop()
was_active = any(j["state"] in ACTIVE for j in listed)


@st.fragment(run_every=2.0 if was_active else None)
def live() -> None:
    """Job table and the chosen job, re-read from the job files every 2 s while a job is active."""
    rows = pt.job_list()
    if any(j["state"] in ACTIVE for j in rows) != was_active:
        st.rerun()  # a job started or ended: redraw the page (polling on/off, new encoders in the sidebar)
    st.dataframe(pt.table(rows, time.time()), hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")})
    ids = [j["id"] for j in reversed(rows)]
    if st.session_state.get(pt.JOB) not in ids:
        st.session_state[pt.JOB] = ids[0]
    st.selectbox("Job", ids, key=pt.JOB)
    job = next(j for j in rows if j["id"] == st.session_state[pt.JOB])
    job_id, spec = job["id"], pt.spec(job["id"])
    st.subheader(f"Job {job_id}")
    st.caption(f"{spec.get('task')} on {spec.get('dataset')}: {spec.get('epochs')} epochs, batch {spec.get('batch_size')}, "
               f"lr {spec.get('lr')}, seed {spec.get('seed')}, σ {spec.get('sigma')} Å, τ {spec.get('tau')}, "
               f"mask rate {spec.get('mask_rate')} · state **{job['state']}**, attempt {job.get('attempt', 1)}")
    if job["state"] in ("failed", "cancelled"):
        (st.error if job["state"] == "failed" else st.warning)(f"{job['state'].capitalize()}: {job.get('reason') or 'no reason recorded'}. "
                                                               "Resume continues from the last checkpoint.")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        if len(pt.metrics(job_id)):
            st.plotly_chart(pt.loss_figure(job_id, str(spec.get("task")), f"Loss per epoch: {spec.get('task')} on {spec.get('dataset')}"),
                            key="pretrain.loss")
        else:
            st.info("No epoch has finished yet; the loss curve appears after the first one.")
    with right:
        if log := pt.log_tail(job_id):
            st.code(log, language=None, wrap_lines=True, height=300 if log.count("\n") > 12 else "content")
        else:
            st.caption("The job's log (log.txt) is empty.")
    epochs, name = pt.checkpoint_epochs(job_id), f"cgcnn@{job_id}"
    if epochs:
        st.success(f"Use as encoder: the checkpoint of epoch {max(epochs)} is the encoder `{name}` (a single epoch: "
                   f"`{name}:<epoch>`). Choose it in the sidebar, or run `crystalrep embed --dataset {ds.name} --encoder {name}`.")
    buttons, action = st.container(horizontal=True), None
    if job["state"] in ACTIVE and buttons.button("Cancel job", key="pretrain.cancel", icon=":material/stop:"):
        action = "cancel"
    if job["state"] in ("failed", "cancelled") and buttons.button("Resume job", key="pretrain.resume",
                                                                  icon=":material/play_arrow:"):
        action = "resume"
    if epochs:  # the callback reruns the whole app, so the sidebar shows the new choice
        buttons.button("Add to the sidebar encoders", key="pretrain.use", on_click=pt.use_encoder, args=(name,),
                       disabled=name in state.current_encoders(), icon=":material/add:")
    if action is not None:
        with st.spinner("Stopping the job…" if action == "cancel" else "Restarting from the last checkpoint…"):
            error = pt.act(action, job_id)
        if error:
            st.error(error)
        else:
            st.rerun()

live()
