// The TiDB Cloud messages without a server: the batchCreate body Dify sends, the batchGet query
// as Dify's HTTP client encodes a list, the answers read back, and unreadable answers refused.

import HeraldCore
import XCTest

final class TiDBCloudMessagesTests: XCTestCase {
    func testBatchCreateBodyHasDifysShape() throws {
        let body = TiDBCloudMessages.batchCreateBody(
            [TiDBClusterSpec(displayName: "abc", rootPassword: "p\"w")], region: "regions/aws-us-east-1",
            projectID: "42", spendLimit: 100)
        XCTAssertEqual(
            body,
            #"{"requests":[{"cluster":{"displayName":"abc","region":{"name":"regions/aws-us-east-1"},"#
                + #""labels":{"tidb.cloud/project":"42"},"spendingLimit":{"monthly":100},"rootPassword":"p\"w"}}]}"#)
        XCTAssertNotNil(try JSONReader.parse(Array(body.utf8))["requests"])
    }

    func testBatchGetQueryRepeatsTheList() {
        XCTAssertEqual(
            TiDBCloudMessages.batchGetQuery(["1", "a b&c"]), "clusterIds=1&clusterIds=a%20b%26c&view=BASIC")
    }

    func testAnswersAreRead() throws {
        let created = try TiDBCloudMessages.createdClusters(
            Array(#"{"clusters":[{"clusterId":"1","displayName":"n1","state":"CREATING"}]}"#.utf8))
        XCTAssertEqual(created, [TiDBCreatedCluster(clusterID: "1", displayName: "n1")])
        XCTAssertEqual(try TiDBCloudMessages.createdClusters(Array(#"{"clusters":[]}"#.utf8)), [])
        XCTAssertEqual(try TiDBCloudMessages.createdClusters(Array("{}".utf8)), [])

        let states = try TiDBCloudMessages.clusterStates(
            Array(
                #"{"clusters":[{"clusterId":"1","state":"ACTIVE","userPrefix":"abc","endpoints":{"public":{"host":"h.x"}}},"#
                    .utf8) + Array(#"{"clusterId":"2","state":"CREATING"}]}"#.utf8))
        XCTAssertEqual(
            states,
            [
                TiDBClusterState(
                    clusterID: "1", state: "ACTIVE", userPrefix: "abc", qdrantEndpoint: "https://qdrant-h.x"),
                TiDBClusterState(clusterID: "2", state: "CREATING", userPrefix: "", qdrantEndpoint: nil),
            ])
        let one = try TiDBCloudMessages.cluster(Array(#"{"clusterId":"9","endpoints":{"public":{"host":""}}}"#.utf8))
        XCTAssertNil(one.qdrantEndpoint, "an empty host is no endpoint")
    }

    func testUnreadableAnswersAreErrorsNamingTheCall() {
        XCTAssertThrowsError(try TiDBCloudMessages.createdClusters(Array("<html>".utf8))) {
            XCTAssertTrue("\($0)".hasPrefix("TiDB Cloud batch_create answer unreadable: not JSON"), "\($0)")
        }
        XCTAssertThrowsError(try TiDBCloudMessages.createdClusters(Array(#"{"clusters":[{"clusterId":1}]}"#.utf8)))
        XCTAssertThrowsError(try TiDBCloudMessages.clusterStates(Array(#"{"clusters":"x"}"#.utf8))) {
            XCTAssertEqual("\($0)", "TiDB Cloud batch_get answer unreadable: clusters is not a list")
        }
        XCTAssertThrowsError(try TiDBCloudMessages.cluster(Array("[]".utf8)))
    }
}
