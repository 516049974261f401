"""Which loading errors are Khanza's verdict on the row (KHANZA_REJECTED) and which are ours (PIPELINE_ERROR):
khanza.registration.refused_by_khanza on the exceptions the driver and SQLAlchemy really raise. No database."""
import pymysql
import pytest
from sqlalchemy import exc

from khanza.registration import refused_by_khanza


def driver_error(wrapper, driver, code: int):
    """`driver(code, ...)` as SQLAlchemy hands it to the loader (wrapped, with the statement)."""
    return wrapper("INSERT INTO reg_periksa ...", {}, driver(code, "message"))


@pytest.mark.parametrize("error", [
    driver_error(exc.IntegrityError, pymysql.err.IntegrityError, 1452),  # foreign key
    driver_error(exc.IntegrityError, pymysql.err.IntegrityError, 1048),  # NULL where it may not be
    driver_error(exc.DataError, pymysql.err.DataError, 1406),  # value too long
    driver_error(exc.OperationalError, pymysql.err.OperationalError, 4025),  # CHECK constraint (MariaDB)
    driver_error(exc.InternalError, pymysql.err.InternalError, 1292),  # incorrect value
], ids=["1452", "1048", "1406", "4025", "1292"])
def test_the_servers_refusal_of_the_row_rejects_it(error):
    assert refused_by_khanza(error)


@pytest.mark.parametrize("error", [
    KeyError("U0003"),  # a clinic deactivated between map and load
    RuntimeError("a bug of ours"),
    driver_error(exc.ProgrammingError, pymysql.err.ProgrammingError, 1146),  # a table missing
    driver_error(exc.OperationalError, pymysql.err.OperationalError, 1142),  # a right missing
    driver_error(exc.InternalError, pymysql.err.InternalError, 1054),  # a column missing
    driver_error(exc.OperationalError, pymysql.err.OperationalError, 2013),  # the client's own error
], ids=["KeyError", "RuntimeError", "1146", "1142", "1054", "2013"])
def test_anything_else_is_not_the_rows_fault(error):
    assert not refused_by_khanza(error)
