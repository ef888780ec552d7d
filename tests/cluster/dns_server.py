"""A tiny real DNS server on 127.0.0.1 (UDP) answering TXT queries, standing in for Fly's."""

from __future__ import annotations

import asyncio
from typing import cast

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT


class TxtServer(asyncio.DatagramProtocol):
    """Answers TXT for the names in ``records`` (each a list of records, each a list of strings).

    Other names get NXDOMAIN; with ``failing`` set, every query gets SERVFAIL.
    """

    def __init__(self) -> None:
        self.records: dict[str, list[list[str]]] = {}
        self.failing = False
        self.queries = 0
        self.answered = asyncio.Event()  # set after each answer
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self.port = transport.get_extra_info("sockname")[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True)
        if self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records or question.rdtype != dns.rdatatype.TXT:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            for strings in self.records[name]:
                texts = [s.encode() for s in strings]
                rrset.add(TXT(dns.rdataclass.IN, dns.rdatatype.TXT, texts), 5)
            response.answer.append(rrset)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
        self.answered.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
