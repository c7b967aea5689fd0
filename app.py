"""gan-face web app: `python app.py`, or a Hugging Face Space (sdk: gradio, app_file: app.py).

Environment: GAN_FACE_GENERATOR / GAN_FACE_DEBLUR / GAN_FACE_INPAINT / GAN_FACE_DETAIL (local folder or Hub repo id, default
pretrained/), GAN_FACE_WEIGHTS (detector and Real-ESRGAN files; ../shared/weights when it
exists), GAN_FACE_DOWNLOAD=0 to forbid downloading missing weights (downloads are checked
against pinned sha256 values; a Space has no local weights), GRADIO_SERVER_PORT (Gradio's own
variable; PORT is an alias) and GRADIO_SERVER_NAME.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: it must run offline

from demo.ui import create_demo  # noqa: E402
from gan_face.imageio import MAX_BYTES  # noqa: E402
from gan_face.pipeline import DEFAULT_DEBLUR, DEFAULT_DETAIL, DEFAULT_GENERATOR, DEFAULT_HIRES, DEFAULT_INPAINT, DEFAULT_INPAINT_DAMAGED, FaceRestorer  # noqa: E402

restorer = FaceRestorer.from_pretrained(
    generator=os.environ.get("GAN_FACE_GENERATOR", DEFAULT_GENERATOR),
    deblur=os.environ.get("GAN_FACE_DEBLUR", DEFAULT_DEBLUR),
    inpaint=os.environ.get("GAN_FACE_INPAINT", DEFAULT_INPAINT),
    inpaint_damaged=os.environ.get("GAN_FACE_INPAINT_DAMAGED", DEFAULT_INPAINT_DAMAGED),
    detail=os.environ.get("GAN_FACE_DETAIL", DEFAULT_DETAIL),
    hires=os.environ.get("GAN_FACE_HIRES", DEFAULT_HIRES),
    weights=os.environ.get("GAN_FACE_WEIGHTS") or None,
    download=os.environ.get("GAN_FACE_DOWNLOAD", "1") == "1",
)
demo = create_demo(restorer)
# a burst of users waits in the queue (at most 64), two requests run at a time (create_demo)
demo.queue(max_size=64, default_concurrency_limit=2)

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or 7860),
        max_file_size=MAX_BYTES,
    )
