import pytest
from pydantic import BaseModel, ValidationError

from mediaflows.errors import InputError, InvalidIdError
from mediaflows.ids import FileId, ProfileName, check_file_id, check_profile, output_file_id

BAD = ["", "../x", "..", "/abs", "%2e%2e/", "a/b", "a\x00b", "x" * 200, ".hidden", "a b", "é"]


@pytest.mark.parametrize("value", BAD)
def test_bad_profile_names_and_file_ids_are_input_errors(value: str) -> None:
    with pytest.raises(InvalidIdError) as info:
        check_profile(value)
    assert isinstance(info.value, InputError)
    with pytest.raises(InvalidIdError):
        check_file_id(value)


@pytest.mark.parametrize("value", ["alice", "team-1", "A_b.c", "0" * 64])
def test_good_profile_names(value: str) -> None:
    assert check_profile(value) == value


def test_ids_are_validated_types_in_models() -> None:
    class Request(BaseModel):
        profile: ProfileName
        file_id: FileId

    assert Request(profile="p", file_id="abc").file_id == "abc"
    with pytest.raises(ValidationError):
        Request(profile="../x", file_id="abc")
    with pytest.raises(ValidationError):
        Request(profile="p", file_id="%2e%2e/")


def test_output_ids_are_deterministic_and_depend_on_every_input() -> None:
    base = output_file_id("a" * 64, "convert", {"crf": 23}, "ffmpeg 5")
    assert base == output_file_id("a" * 64, "convert", {"crf": 23}, "ffmpeg 5")
    variants = {
        output_file_id("b" * 64, "convert", {"crf": 23}, "ffmpeg 5"),
        output_file_id("a" * 64, "transcribe", {"crf": 23}, "ffmpeg 5"),
        output_file_id("a" * 64, "convert", {"crf": 24}, "ffmpeg 5"),
        output_file_id("a" * 64, "convert", {"crf": 23}, "ffmpeg 6"),
    }
    assert base not in variants and len(variants) == 4
    check_file_id(base)
