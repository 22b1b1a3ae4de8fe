"""How many threads a step uses: one per core on local disk, more where each piece of work
mostly waits on S3's round trips, never more than the pieces or what memory allows."""

from databaker.concurrency import HELD_AT_ONCE, WORKERS, threads_for


def test_local_disk_gets_a_thread_per_core():
    assert threads_for(1, 22) == WORKERS
    assert threads_for(1) == WORKERS
    assert threads_for(1, 22, workers=1) == 1


def test_s3_gets_as_many_as_the_pieces_and_the_memory_bound_allow():
    assert threads_for(25, 22) == HELD_AT_ONCE
    assert threads_for(25) == HELD_AT_ONCE
    assert threads_for(25, 5) == max(WORKERS, 5)
    assert threads_for(25, 22, most=25) == 22
    assert threads_for(3, 22) == max(WORKERS, 3)


def test_never_fewer_than_the_cores_asked_for():
    assert threads_for(25, 1) == WORKERS
    assert threads_for(25, 1, workers=4) == 4
