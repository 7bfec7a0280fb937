"""The panel listing the last secure round's peers by key fingerprint: an admin recognises one (audited, shown by
name), a clinician cannot."""

from __future__ import annotations

from pneumodesk.client.roster_policy import RosterPeer, save_last_roster
from pneumodesk.federation.secagg.roster_rules import key_fingerprint
from pneumodesk.gui.widgets.roster_peers_panel import RosterPeersPanel
from pneumodesk.node import NodeService
from tests.node_builders import CLINICIAN, OWNER, sign_in


def test_an_admin_recognises_a_peer_of_the_last_roster_by_its_fingerprint(qtbot, home):
    fingerprints = [key_fingerprint(bytes([i]) * 32) for i in (1, 2)]
    save_last_roster(home, [RosterPeer("hospital-01", fingerprints[0], False),
                            RosterPeer("hospital-02", fingerprints[1], False)])
    node = NodeService.open(home)
    panel = RosterPeersPanel(node, home)
    qtbot.addWidget(panel)
    panel.set_session(sign_in(home, CLINICIAN[0], CLINICIAN[2]))
    assert panel.table.rowCount() == 2 and not panel.recognise_button.isEnabled()
    assert panel.table.item(1, 1).text() == fingerprints[1] and panel.table.item(1, 2).text() == "not recognised"

    panel.set_session(sign_in(home, OWNER[0], OWNER[2]))
    panel.table.selectRow(1)
    panel.name_field.setText("St Mary's")
    assert panel.recognise_selected()

    assert panel.table.item(1, 2).text() == "St Mary's" and "recognised" in panel.message.text()
    assert [peer.node_id for peer in node.peers.list()] == ["hospital-02"]
    assert node.audit.read(action="peer_recognised")[0].user == OWNER[0]
    panel.table.selectRow(1)
    assert panel.forget_selected() and panel.table.item(1, 2).text() == "not recognised"
    node.close()
