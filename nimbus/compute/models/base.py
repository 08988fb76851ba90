from sqlalchemy.orm import DeclarativeBase

from nimbus.db.base import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata("compute")
