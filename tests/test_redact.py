from loadtests.redact import Redactor, redact_dsn


def test_url_password_is_masked():
    assert redact_dsn("postgresql://app:s3cr3t@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_dsn("see postgres://u:p%40ss@h/d now") == "see postgres://u:***@h/d now"


def test_url_without_password_is_unchanged():
    assert redact_dsn("postgresql://app@db/x") == "postgresql://app@db/x"


def test_keyword_password_is_masked():
    assert redact_dsn("host=db password=s3cr3t user=app") == "host=db password=*** user=app"
    assert redact_dsn("host=db password='a b' user=app") == "host=db password=*** user=app"


def test_known_secrets_are_masked_anywhere(tmp_path):
    redactor = Redactor(["hunter2"])
    assert redactor("error for hunter2 in log") == "error for *** in log"
    (tmp_path / "sub").mkdir()
    log = tmp_path / "sub" / "x.log"
    log.write_text("a hunter2 b\n")
    (tmp_path / "clean.txt").write_text("nothing\n")
    assert redactor.scrub_folder(tmp_path) == 1
    assert "hunter2" not in log.read_text()
