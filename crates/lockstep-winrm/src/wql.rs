//! Reading the items of a WS-Enumeration of a WQL query into [`WmiObject`]s.
//!
//! Each top-level element of the `Items` content is one object (`<p:Win32_Service …>` for
//! `SELECT *`, `<wsman:XmlFragment>` for a property list); each of its child elements is a
//! property, named by its local name, whose value is its text. Nested elements (a
//! `<cim:Datetime>` inside a date property) contribute their text; `xsi:nil="true"` properties
//! are empty; a property repeated (an array) has its values joined with `, `.

use lockstep_core::WmiObject;
use quick_xml::events::Event;
use quick_xml::Reader;

/// Parses the raw XML between `<w:Items>` and `</w:Items>` (possibly several pages joined).
pub fn parse_items(xml: &str) -> Result<Vec<WmiObject>, String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut objects = Vec::new();
    let mut current: Option<WmiObject> = None;
    // Property being read: (name, text so far).
    let mut property: Option<(String, String)> = None;
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("bad XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(e) => {
                match depth {
                    0 => current = Some(WmiObject::new()),
                    1 => property = Some((local_name(e.name().as_ref())?, String::new())),
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(e) => match depth {
                0 => objects.push(WmiObject::new()),
                1 => {
                    // `<p:InstallDate xsi:nil="true"/>` or an empty value.
                    let name = local_name(e.name().as_ref())?;
                    if let Some(obj) = current.as_mut() {
                        add(obj, name, String::new());
                    }
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some((_, text)) = property.as_mut() {
                    let t = t
                        .unescape()
                        .map_err(|e| format!("bad text in a property: {e}"))?;
                    text.push_str(&t);
                }
            }
            Event::CData(t) => {
                if let Some((_, text)) = property.as_mut() {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced end tag".to_owned())?;
                match depth {
                    0 => objects.extend(current.take()),
                    1 => {
                        if let (Some(obj), Some((name, text))) = (current.as_mut(), property.take())
                        {
                            add(obj, name, text.trim().to_owned());
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err("the items end inside an element".to_owned());
    }
    Ok(objects)
}

fn add(obj: &mut WmiObject, name: String, value: String) {
    obj.entry(name)
        .and_modify(|v| {
            v.push_str(", ");
            v.push_str(&value);
        })
        .or_insert(value);
}

fn local_name(qname: &[u8]) -> Result<String, String> {
    let local = match qname.iter().rposition(|&b| b == b':') {
        Some(i) => &qname[i + 1..],
        None => qname,
    };
    String::from_utf8(local.to_vec()).map_err(|_| "an element name is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, &str)]) -> WmiObject {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_select_star_items_as_windows_sends_them() {
        // The shape of a Windows 2003 R2 answer to `SELECT * FROM Win32_Service WHERE …`.
        let xml = r#"<p:Win32_Service xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="p:Win32_Service_Type" xml:lang="cs-CZ"><p:AcceptPause>false</p:AcceptPause><p:Caption>Microsoft Exchange – úložiště</p:Caption><p:Description xsi:nil="true"/><p:Name>MSExchangeIS</p:Name><p:ProcessId>1234</p:ProcessId><p:State>Running</p:State></p:Win32_Service><p:Win32_Service xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><p:Name>W3SVC</p:Name><p:State>Stopped</p:State></p:Win32_Service>"#;
        let objects = parse_items(xml).unwrap();
        assert_eq!(
            objects,
            vec![
                obj(&[
                    ("AcceptPause", "false"),
                    ("Caption", "Microsoft Exchange – úložiště"),
                    ("Description", ""),
                    ("Name", "MSExchangeIS"),
                    ("ProcessId", "1234"),
                    ("State", "Running"),
                ]),
                obj(&[("Name", "W3SVC"), ("State", "Stopped")]),
            ]
        );
    }

    #[test]
    fn reads_datetimes_fragments_arrays_and_escapes() {
        let xml = r#"
            <p:Win32_OperatingSystem xmlns:p="urn:x" xmlns:cim="urn:cim">
              <p:LastBootUpTime><cim:Datetime>2026-11-21T07:59:12.5-00:00</cim:Datetime></p:LastBootUpTime>
              <p:MUILanguages>cs-CZ</p:MUILanguages>
              <p:MUILanguages>en-US</p:MUILanguages>
              <p:Caption>Microsoft(R) Windows(R) Server 2003 &amp; R2</p:Caption>
            </p:Win32_OperatingSystem>
            <wsman:XmlFragment xmlns:wsman="urn:w"><Name>EVS1</Name><OwnerNode>PRG-N1</OwnerNode><State>2</State></wsman:XmlFragment>
            <p:MSCluster_Node xmlns:p="urn:y"/>"#;
        let objects = parse_items(xml).unwrap();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["LastBootUpTime"], "2026-11-21T07:59:12.5-00:00");
        assert_eq!(objects[0]["MUILanguages"], "cs-CZ, en-US");
        assert_eq!(
            objects[0]["Caption"],
            "Microsoft(R) Windows(R) Server 2003 & R2"
        );
        assert_eq!(
            objects[1],
            obj(&[("Name", "EVS1"), ("OwnerNode", "PRG-N1"), ("State", "2")])
        );
        assert!(objects[2].is_empty());
    }

    #[test]
    fn no_items_is_no_objects() {
        assert!(parse_items("").unwrap().is_empty());
        assert!(parse_items("  \n ").unwrap().is_empty());
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(parse_items("<p:A><p:Name>x</p:A>").is_err());
        assert!(parse_items("<p:A><p:Name>x</p:Name>").is_err());
    }
}
